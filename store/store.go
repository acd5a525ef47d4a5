// Package store defines where rotor keeps a managed secret: its slots, its
// in-progress rotation and the lease that serialises rotators.
//
// # Model
//
// A [Secret] holds up to four live credentials ([Key]) in named slots:
// current (what every consumer uses), previous (the key current replaced,
// valid until its ExpiresAt), next (a pre-staged key) and pending (the new
// key of a rotation that has not been promoted yet). Keys that left the
// slots but may still be valid at their issuer wait in Retired until they
// are revoked.
//
// # Operations and intents
//
// Every operation that changes a secret in more than one save (a rotation,
// a rollback, a revoke, a stage) holds the secret's lease, a [Rotation]
// record, from its first save to its last; its Kind says which operation
// it is. Before a call that changes the world outside the store and whose
// result rotor must keep (a mint), the operation saves an [Intent] with a
// request id; a run that finds an intent without its outcome reconciles it
// with the issuer instead of repeating the call blindly. A key rotor has
// decided to revoke is marked [KeyRevoking] before its issuer is asked, and
// the ids of revoked keys are remembered in Revoked, so that no such key is
// ever made current again.
//
// # Contract
//
// A [Store] loads a secret together with an opaque [Version] and saves it
// with compare-and-swap: a save succeeds only when the stored version is still
// the one the caller loaded. That single primitive is all the coordination
// rotor needs; two rotators never interleave because the loser's save fails
// with [ErrConflict]. Implementations must pass the conformance suite in
// package storetest.
package store

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Implementations wrap them so callers can use errors.Is.
var (
	// ErrNotFound means the store holds no secret of that name.
	ErrNotFound = errors.New("secret not found")
	// ErrConflict means the stored version is not the one the caller
	// expected: somebody else wrote in between, or the secret already exists
	// when the caller asked to create it.
	ErrConflict = errors.New("secret was changed concurrently")
)

// Version identifies one stored state of a secret. It is opaque to callers:
// they only hand back what Load or Save returned. NoVersion stands for "the
// secret does not exist yet".
type Version string

// NoVersion is the version of a secret that does not exist.
const NoVersion Version = ""

// Store is the contract every secret store implements.
type Store interface {
	// Load returns the secret called name and its current version. It
	// returns an error wrapping ErrNotFound when there is none.
	Load(ctx context.Context, name string) (*Secret, Version, error)

	// Save writes s (keyed by s.Name) if the stored version equals
	// expected, and returns the new version. expected == NoVersion creates
	// the secret and fails if it already exists. A stale expected version
	// returns an error wrapping ErrConflict and writes nothing. A Save is
	// atomic: readers see either the old or the new secret, never a mix.
	Save(ctx context.Context, s *Secret, expected Version) (Version, error)
}

// Lister is implemented by stores that can enumerate their secrets.
type Lister interface {
	// List returns the names of all stored secrets, sorted.
	List(ctx context.Context) ([]string, error)
}

// Slot names a position in a secret's key set.
type Slot string

// The slots of a secret.
const (
	SlotCurrent  Slot = "current"
	SlotPrevious Slot = "previous"
	SlotNext     Slot = "next"
	SlotPending  Slot = "pending"
)

// Slots lists every slot in display order.
var Slots = []Slot{SlotCurrent, SlotPrevious, SlotNext, SlotPending}

// ParseSlot validates a slot name.
func ParseSlot(s string) (Slot, error) {
	for _, sl := range Slots {
		if string(sl) == s {
			return sl, nil
		}
	}
	return "", fmt.Errorf("unknown slot %q (want current, previous, next or pending)", s)
}

// Key is one credential. Its Value is the secret; everything else is safe to
// show. Key formats itself without the value, so printing a Key (or logging
// it with slog) never leaks it.
type Key struct {
	Value     string            `json:"value"`
	ID        string            `json:"key_id"`
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at,omitzero"`
	Source    string            `json:"source,omitempty"`
	Meta      map[string]string `json:"meta,omitempty"`
	// State is empty for a usable key, or [KeyRevoking] once rotor has
	// decided to revoke it.
	State KeyState `json:"state,omitempty"`
}

// MetaIssuerExpiresAt is the [Key].Meta entry (RFC 3339) recording when
// the key's issuer deletes it on its own (a Clerk instance key rotated out
// with a deletion delay, a Clerk machine key's previous_token_ttl): the key
// stops working then, whatever slot it is in. The rotation engine sets it
// when it promotes a key whose provider said how long the issuer keeps the
// replaced one.
const MetaIssuerExpiresAt = "issuer_expires_at"

// IssuerExpiresAt returns when k's issuer deletes it ([MetaIssuerExpiresAt]),
// or the zero time when it does not (or k is nil).
func (k *Key) IssuerExpiresAt() time.Time {
	if k == nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339, k.Meta[MetaIssuerExpiresAt])
	if err != nil {
		return time.Time{}
	}
	return t
}

// KeyState says where a key is on its way out.
type KeyState string

// KeyRevoking marks a key rotor decided to revoke and whose issuer may
// already have been asked: it never becomes current, previous or next
// again, and the next revoke finishes revoking it whatever its expiry.
const KeyRevoking KeyState = "revoking"

// Revoking reports whether k is marked [KeyRevoking].
func (k *Key) Revoking() bool { return k != nil && k.State == KeyRevoking }

// Key sources.
const (
	SourceMinted = "minted"
	SourceStaged = "staged"
)

// String returns the key id, never the value.
func (k Key) String() string { return "key " + k.ID }

// GoString keeps %#v from printing the value.
func (k Key) GoString() string { return "store.Key{ID:" + k.ID + "}" }

// Format implements fmt.Formatter so that every verb prints the key id only.
func (k Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("key_id", k.ID), slog.Time("created_at", k.CreatedAt))
}

// KeyID returns the id of k, or "" when there is no key: for the
// optional slots, in messages, audit records and hook environments.
func KeyID(k *Key) string {
	if k == nil {
		return ""
	}
	return k.ID
}

// Expired reports whether the key has an expiry that is not after now.
func (k *Key) Expired(now time.Time) bool {
	return k != nil && !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Clone returns a deep copy of k; nil stays nil.
func (k *Key) Clone() *Key {
	if k == nil {
		return nil
	}
	c := *k
	c.Meta = maps.Clone(k.Meta)
	return &c
}

// Step is a step of the rotation state machine. A Rotation records the last
// step that completed.
type Step string

// The steps of a rotation, in order.
const (
	StepCreate  Step = "create"
	StepTest    Step = "test"
	StepPromote Step = "promote"
	StepReload  Step = "reload"
	StepVerify  Step = "verify"
	StepFinish  Step = "finish"
)

// Steps lists the rotation steps in order.
var Steps = []Step{StepCreate, StepTest, StepPromote, StepReload, StepVerify, StepFinish}

// StepAborted is recorded as the last step of a rotation whose abort has
// been saved but whose lease is not yet released.
const StepAborted Step = "aborted"

// OpKind names the operation a [Rotation] record holds.
type OpKind string

// The operations that hold a secret's lease.
const (
	// OpRotate: create → test → promote → reload → verify → finish.
	OpRotate OpKind = "rotate"
	// OpRollback: test previous → promote it back → reload → verify →
	// finish.
	OpRollback OpKind = "rollback"
	// OpRevoke: revoke the key named by KeyID at its issuer, then clear it.
	OpRevoke OpKind = "revoke"
	// OpStage: a key was saved as next; the operation's outcome is being
	// recorded.
	OpStage OpKind = "stage"
	// OpDismiss: a possibly orphaned key was dismissed by the operator.
	OpDismiss OpKind = "dismiss"
)

// Rotation is the operation in flight on a secret (a rotation, or a
// rollback, revoke or stage; see Kind), held under a lease.
type Rotation struct {
	ID string `json:"id"`
	// Kind is the operation; empty means OpRotate (records written before
	// operations had kinds).
	Kind      OpKind    `json:"kind,omitempty"`
	Step      Step      `json:"step,omitempty"` // last completed step; empty before the first
	StartedAt time.Time `json:"started_at"`
	Initiator string    `json:"initiator"`
	// Holder identifies the process holding the lease (host, pid, nonce).
	Holder string `json:"holder"`
	// LeaseExpiresAt is when another rotator may take the rotation over.
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	// KeyID names the key the operation is about, when it is about one
	// that is not in a fixed slot: the key being revoked or staged, the
	// key a rollback sets aside.
	KeyID string `json:"key_id,omitempty"`
	// Reason says why a rollback runs ("requested", "automatic after
	// failed verify", "abort of rotation …").
	Reason string `json:"reason,omitempty"`
	// Intent is a call outside the store that the operation decided on
	// and may have made, whose outcome is not saved yet.
	Intent *Intent `json:"intent,omitempty"`
}

// OpKind returns r's kind, OpRotate when none is recorded.
func (r *Rotation) OpKind() OpKind {
	if r.Kind == "" {
		return OpRotate
	}
	return r.Kind
}

// Clone returns a copy of r; nil stays nil.
func (r *Rotation) Clone() *Rotation {
	if r == nil {
		return nil
	}
	c := *r
	c.Intent = r.Intent.Clone()
	return &c
}

// Intent actions.
const (
	// IntentMint: the provider is (or was) asked to mint a credential.
	IntentMint = "mint"
)

// Intent records a side effect at an issuer before it is attempted.
type Intent struct {
	// ID is the request id the provider is given; it stays the same when
	// the call is repeated or reconciled.
	ID     string    `json:"id"`
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// Clone returns a copy of i; nil stays nil.
func (i *Intent) Clone() *Intent {
	if i == nil {
		return nil
	}
	c := *i
	return &c
}

// RevokedKey remembers a key that was revoked and cleared from the slots.
type RevokedKey struct {
	ID        string    `json:"key_id"`
	RevokedAt time.Time `json:"revoked_at"`
}

// MaxRevoked bounds Secret.Revoked: the oldest entries are dropped first.
// A key revoked that long ago is also one its issuer rejects, which every
// operation that could bring a key back tests for.
const MaxRevoked = 64

// Orphan reports a credential that an interrupted call may have created at
// the issuer without rotor ever learning its value: rotor cannot revoke
// it, so an operator must check the issuer.
type Orphan struct {
	// RequestID is the id of the call (see Intent).
	RequestID string `json:"request_id"`
	// Operation is the id of the operation that made the call.
	Operation string    `json:"operation"`
	Action    string    `json:"action"`
	At        time.Time `json:"at"`
	// Check tells the operator what to look for at the issuer.
	Check string `json:"check"`
}

// Secret is everything rotor stores about one managed secret.
type Secret struct {
	Name     string `json:"name"`
	Current  *Key   `json:"current,omitempty"`
	Previous *Key   `json:"previous,omitempty"`
	Next     *Key   `json:"next,omitempty"`
	Pending  *Key   `json:"pending,omitempty"`
	// Retired holds keys that left the slots (a displaced previous, a key
	// set aside by rollback) and still await revocation at their issuer.
	Retired  []Key     `json:"retired,omitempty"`
	Rotation *Rotation `json:"rotation,omitempty"`
	// LastRotatedAt is when the last rotation finished.
	LastRotatedAt time.Time `json:"last_rotated_at,omitzero"`
	// ReloadedKeyID is the id of the key the last completed reload gave
	// consumers. Until another reload completes, consumers may still use
	// it, so it is never revoked.
	ReloadedKeyID string `json:"reloaded_key_id,omitempty"`
	// Revoked lists the most recently revoked keys (at most MaxRevoked),
	// newest last, so that none is staged, promoted or rolled back to.
	Revoked []RevokedKey `json:"revoked,omitempty"`
	// Orphans lists credentials an interrupted call may have left at the
	// issuer, until an operator dismisses them.
	Orphans []Orphan `json:"orphans,omitempty"`
	// Seal binds this state to the audit chain; nil for a secret saved
	// before rotor sealed its saves. See [Seal].
	Seal *Seal `json:"seal,omitempty"`
}

// Seal is what binds a stored secret to the audit chain, so that a state
// put back from an older copy of the store is told from the current one
// (package binding writes and checks it). Stores keep it as they keep
// every other field: it is part of the state, and every store must give
// back a secret whose [Secret.StateDigest] is the one it was given
// (storetest checks it).
type Seal struct {
	// Version counts the saves of the secret: 1 for the first.
	Version uint64 `json:"version"`
	// ChainSeq and ChainHash name the last record of the audit chain the
	// saver had read before the save: the chain must never be found
	// shorter than that afterwards.
	ChainSeq  uint64 `json:"chain_seq"`
	ChainHash string `json:"chain_hash"`
	// MAC is the state's [Secret.StateDigest], the seal's other fields
	// included, so that nobody without the key can forge or edit it.
	MAC string `json:"mac"`
}

// Clone returns a copy of s; nil stays nil.
func (s *Seal) Clone() *Seal {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// stateDomain keeps state digests from ever being valid as another MAC
// made with the same key.
const stateDomain = "rotor-store-state-v1"

// StateDigest returns the hex HMAC-SHA256, keyed with key, of s's state:
// every field, the seal's included but for its MAC, in a canonical JSON
// encoding with times in UTC. Two secrets have the same digest only when
// a store could not tell them apart.
func (s *Secret) StateDigest(key []byte) string {
	c := s.Clone()
	if c.Seal != nil {
		c.Seal.MAC = ""
	}
	c.inUTC()
	// A Secret always encodes: it holds only strings, times, numbers,
	// string maps and slices of those.
	doc, err := json.Marshal(c)
	if err != nil {
		panic("store: encode secret for its digest: " + err.Error())
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(stateDomain))
	m.Write([]byte{0})
	m.Write(doc)
	return hex.EncodeToString(m.Sum(nil))
}

// inUTC puts every time of s in UTC, so that the digest does not depend
// on the time zone a store or a process decodes times in.
func (s *Secret) inUTC() {
	utc := func(t *time.Time) { *t = t.UTC() }
	key := func(k *Key) {
		if k != nil {
			utc(&k.CreatedAt)
			utc(&k.ExpiresAt)
		}
	}
	for _, sl := range Slots {
		key(s.Slot(sl))
	}
	for i := range s.Retired {
		key(&s.Retired[i])
	}
	if r := s.Rotation; r != nil {
		utc(&r.StartedAt)
		utc(&r.LeaseExpiresAt)
		if r.Intent != nil {
			utc(&r.Intent.At)
		}
	}
	utc(&s.LastRotatedAt)
	for i := range s.Revoked {
		utc(&s.Revoked[i].RevokedAt)
	}
	for i := range s.Orphans {
		utc(&s.Orphans[i].At)
	}
}

// IsRevoked reports whether the key with id was revoked: it is in Revoked,
// or marked [KeyRevoking] in previous or the retired list.
func (s *Secret) IsRevoked(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range s.Revoked {
		if r.ID == id {
			return true
		}
	}
	if p := s.Previous; p.Revoking() && p.ID == id {
		return true
	}
	for i := range s.Retired {
		if k := &s.Retired[i]; k.Revoking() && k.ID == id {
			return true
		}
	}
	return false
}

// AddRevoked remembers id as revoked at, keeping the list within
// MaxRevoked.
func (s *Secret) AddRevoked(id string, at time.Time) {
	s.Revoked = append(s.Revoked, RevokedKey{ID: id, RevokedAt: at})
	if n := len(s.Revoked) - MaxRevoked; n > 0 {
		s.Revoked = slices.Delete(s.Revoked, 0, n)
	}
}

// Slot returns the key in slot sl, or nil.
func (s *Secret) Slot(sl Slot) *Key {
	switch sl {
	case SlotCurrent:
		return s.Current
	case SlotPrevious:
		return s.Previous
	case SlotNext:
		return s.Next
	case SlotPending:
		return s.Pending
	}
	return nil
}

// Clone returns a deep copy of s.
func (s *Secret) Clone() *Secret {
	if s == nil {
		return nil
	}
	c := *s
	c.Current = s.Current.Clone()
	c.Previous = s.Previous.Clone()
	c.Next = s.Next.Clone()
	c.Pending = s.Pending.Clone()
	c.Rotation = s.Rotation.Clone()
	c.Retired = slices.Clone(s.Retired)
	for i := range c.Retired {
		c.Retired[i].Meta = maps.Clone(s.Retired[i].Meta)
	}
	c.Revoked = slices.Clone(s.Revoked)
	c.Orphans = slices.Clone(s.Orphans)
	c.Seal = s.Seal.Clone()
	return &c
}

// Values returns every secret value s holds, for callers that must make sure
// none of them is ever printed.
func (s *Secret) Values() []string {
	var vs []string
	for _, sl := range Slots {
		if k := s.Slot(sl); k != nil {
			vs = append(vs, k.Value)
		}
	}
	for _, k := range s.Retired {
		vs = append(vs, k.Value)
	}
	return vs
}

// Validate checks invariants every store may rely on before writing.
func (s *Secret) Validate() error {
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	for _, sl := range Slots {
		if k := s.Slot(sl); k != nil && k.Value == "" {
			return fmt.Errorf("secret %s: slot %s holds an empty value", s.Name, sl)
		}
	}
	return nil
}

// MaxValueLen is the longest key value rotor accepts, in bytes.
const MaxValueLen = 64 << 10

// ErrInvalidValue is wrapped by [ValidateValue]'s errors.
var ErrInvalidValue = errors.New("invalid key value")

// ValidateValue checks that v can be a key value: 1 to [MaxValueLen]
// bytes of valid UTF-8 without NUL, carriage return or line feed. Every way
// a value enters rotor (rotor stage, the API's stage, a provider's mint)
// applies this one rule, so that the bytes tested at the issuer are the
// bytes stored (JSON would replace invalid UTF-8 with U+FFFD) and every
// stored value can travel in an environment variable and an env file
// (neither can carry NUL; a newline would end the variable). The error
// wraps [ErrInvalidValue] and never quotes v.
func ValidateValue(v string) error {
	var why string
	switch {
	case v == "":
		why = "it is empty"
	case len(v) > MaxValueLen:
		why = fmt.Sprintf("it is %d bytes long, more than %d", len(v), MaxValueLen)
	case !utf8.ValidString(v):
		why = "it is not valid UTF-8"
	case strings.IndexByte(v, 0) >= 0:
		why = "it contains a NUL byte"
	case strings.ContainsAny(v, "\r\n"):
		why = "it contains a line break"
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidValue, why)
}

// MaxNameLen is the longest secret name, in characters.
const MaxNameLen = 128

// ValidateName checks that name is usable as a secret name in every store:
// 1-128 characters of [A-Za-z0-9_.-], not starting with '.' or '-'. Every
// store stores every name it accepts; the conformance suite
// (storetest, LongestNames) holds them to it.
func ValidateName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("invalid secret name %q: want 1-%d characters", clipName(name), MaxNameLen)
	}
	for i, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.'
		if !ok || i == 0 && (r == '.' || r == '-') {
			return fmt.Errorf("invalid secret name %q: use letters, digits, '_', '-' and '.', not starting with '.' or '-'", clipName(name))
		}
	}
	return nil
}

// clipName shortens a refused name for messages: it may be anything a
// caller sent, of any length.
func clipName(name string) string {
	if len(name) <= MaxNameLen+8 {
		return name
	}
	return strings.ToValidUTF8(name[:MaxNameLen], "") + "…"
}
