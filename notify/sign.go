package notify

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// Signature headers, as the Standard Webhooks specification names them
// (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
const (
	HeaderID        = "webhook-id"
	HeaderTimestamp = "webhook-timestamp"
	HeaderSignature = "webhook-signature"
)

// keyPrefix marks a signing key in its text form: "whsec_" and the key in
// standard base64, as Standard Webhooks libraries expect it.
const keyPrefix = "whsec_"

// keySize is the size of a key rotor creates.
const keySize = 32

// ErrBadSignature is returned by [Verify] for a delivery whose signature
// does not match.
var ErrBadSignature = errors.New("notification signature does not verify")

// ParseKey decodes a signing key in its text form ("whsec_…", or the
// base64 alone).
func ParseKey(text string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(text), keyPrefix))
	if err != nil || len(key) < 16 {
		return nil, errors.New("invalid signing key: want whsec_ and at least 16 bytes in base64")
	}
	return key, nil
}

// LoadOrCreateKey reads the signing key in path, creating the file with a
// new random key (mode 0600) when it does not exist. Like the audit salt,
// a file readable by others is refused.
func LoadOrCreateKey(path string) ([]byte, error) {
	b, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := createKeyFile(path); err != nil {
			return nil, fmt.Errorf("create signing key: %w", err)
		}
		b, err = readKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("load signing key: %w", err)
	}
	key, err := ParseKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("load signing key %s: %w", path, err)
	}
	return key, nil
}

// createKeyFile writes a new random key to path unless the file exists:
// the key is written to a temporary file, synced, and linked into place,
// which fails if another process created path first (its key is kept).
func createKeyFile(path string) error {
	key := make([]byte, keySize)
	_, _ = rand.Read(key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".signing-key-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = io.WriteString(tmp, keyPrefix+base64.StdEncoding.EncodeToString(key)+"\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o, want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	return io.ReadAll(io.LimitReader(f, 1024))
}

// sign returns the webhook-signature value of a delivery: "v1," and the
// base64 HMAC-SHA256, under key, of "<id>.<timestamp>.<body>".
func sign(key []byte, id string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.", id, ts)
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// Verify checks the Standard Webhooks signature of a delivery as a
// receiver does: one of the space-separated signatures in
// webhook-signature must be the HMAC of "<webhook-id>.<webhook-timestamp>.<body>",
// and the timestamp must be within tolerance of now (replays of old
// deliveries are refused). Receivers in other languages can use any
// Standard Webhooks library instead.
func Verify(key []byte, h http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	id, tsText, sigs := h.Get(HeaderID), h.Get(HeaderTimestamp), h.Get(HeaderSignature)
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if id == "" || err != nil || sigs == "" {
		return fmt.Errorf("%w: missing or malformed webhook headers", ErrBadSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: timestamp outside the tolerance", ErrBadSignature)
	}
	want := []byte(sign(key, id, ts, body))
	for _, s := range strings.Fields(sigs) {
		if subtle.ConstantTimeCompare([]byte(s), want) == 1 {
			return nil
		}
	}
	return ErrBadSignature
}
