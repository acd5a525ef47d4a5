package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Verification errors. Every error of [Keyring.Verify] and
// [Keyring.VerifyAny] wraps ErrInvalidSignature, and some wrap one of the
// more specific ones too, so a caller that only wants to reject checks
// errors.Is(err, ErrInvalidSignature).
var (
	// ErrInvalidSignature means the signature does not match the message
	// under any valid key, or is malformed.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrUnknownKey means the signature names a key id the keyring does
	// not hold. It may also mean the signer adopted a new key before this
	// process did.
	ErrUnknownKey = errors.New("unknown key id")
	// ErrExpiredKey means the signature was made with the previous key
	// after its grace period ended.
	ErrExpiredKey = errors.New("key expired")
)

// SignatureVersion prefixes every signature [Keyring.Sign] makes.
const SignatureVersion = "v1"

// b64 encodes MACs: URL-safe, unpadded, and strict so that each MAC has
// exactly one accepted encoding.
var b64 = base64.RawURLEncoding.Strict()

const macB64Len = (sha256.Size*8 + 5) / 6 // 43

// Sign returns an HMAC-SHA256 signature of msg under the current key, in
// the form
//
//	v1,<key id>,<MAC, base64url without padding>
//
// Because it names its key, [Keyring.Verify] checks it with one MAC
// computation.
func (k *Keyring) Sign(msg []byte) string {
	e := k.state.Load().keys[0]
	m := e.mac(msg)
	defer e.macs.Put(m)
	b64.Encode(m.b64[:], m.sum[:])
	var b strings.Builder
	b.Grow(len(SignatureVersion) + 1 + len(e.key.ID) + 1 + macB64Len)
	b.WriteString(SignatureVersion)
	b.WriteByte(',')
	b.WriteString(e.key.ID)
	b.WriteByte(',')
	b.Write(m.b64[:])
	return b.String()
}

// Verify checks a signature made by [Keyring.Sign] (in this or any process
// sharing the key set). It accepts the current key, the previous key until
// it expires and the next key, and computes one MAC. It fails with an error
// wrapping [ErrInvalidSignature] and, where it applies, [ErrUnknownKey] or
// [ErrExpiredKey]. It does not allocate beyond what the error needs.
func (k *Keyring) Verify(msg []byte, sig string) error {
	ver, rest, ok1 := strings.Cut(sig, ",")
	id, enc, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 || ver != SignatureVersion || len(enc) != macB64Len {
		return fmt.Errorf("verify: malformed signature: %w", ErrInvalidSignature)
	}
	var e *entry
	for _, c := range k.state.Load().keys {
		if c.key.ID == id {
			e = c
			break
		}
	}
	if e == nil {
		return fmt.Errorf("verify: %w: %w", ErrInvalidSignature, ErrUnknownKey)
	}
	if !e.valid(k.cfg.now()) {
		return fmt.Errorf("verify: key %s: %w: %w", e.key.ID, ErrInvalidSignature, ErrExpiredKey)
	}
	m := e.mac(msg)
	defer e.macs.Put(m)
	copy(m.b64[:], enc)
	var got [sha256.Size]byte
	if n, err := b64.Decode(got[:], m.b64[:]); err != nil || n != len(got) {
		return fmt.Errorf("verify: malformed signature: %w", ErrInvalidSignature)
	}
	if !hmac.Equal(got[:], m.sum[:]) {
		return fmt.Errorf("verify: key %s: %w", e.key.ID, ErrInvalidSignature)
	}
	return nil
}

// VerifyAny checks a raw HMAC-SHA256 mac of msg that does not say which key
// made it (a webhook signature from a system that knows nothing of key ids)
// against every valid key: the current key, the previous key until it
// expires and the next key. It costs up to one MAC computation per key; use
// [Keyring.Sign] and [Keyring.Verify] where the format is yours to choose.
// It fails with an error wrapping [ErrInvalidSignature].
func (k *Keyring) VerifyAny(msg, mac []byte) error {
	now := k.cfg.now()
	for _, e := range k.state.Load().keys {
		if !e.valid(now) {
			continue
		}
		m := e.mac(msg)
		ok := hmac.Equal(mac, m.sum[:])
		e.macs.Put(m)
		if ok {
			return nil
		}
	}
	return fmt.Errorf("verify: %w", ErrInvalidSignature)
}
