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
}

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

// Rotation is an unfinished rotation, held under a lease.
type Rotation struct {
	ID        string    `json:"id"`
	Step      Step      `json:"step,omitempty"` // last completed step; empty before create
	StartedAt time.Time `json:"started_at"`
	Initiator string    `json:"initiator"`
	// Holder identifies the process holding the lease (host, pid, nonce).
	Holder string `json:"holder"`
	// LeaseExpiresAt is when another rotator may take the rotation over.
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
}

// Clone returns a copy of r; nil stays nil.
func (r *Rotation) Clone() *Rotation {
	if r == nil {
		return nil
	}
	c := *r
	return &c
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
