package keyring

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/rotor-dev/rotor/keyring/keyid"
)

// ErrNoCurrentKey means a source (or a pushed set) has no current key. A
// keyring never replaces its set with one that lacks a current key; it keeps
// the last good set and reports an error wrapping ErrNoCurrentKey instead.
var ErrNoCurrentKey = errors.New("no current key")

// Key is one credential of a [Set]. Value is the secret; ID is its public
// identifier (see the package documentation for how ids are derived) and is
// the only part a Key shows when it is printed, logged or encoded as JSON.
type Key struct {
	// Value is the secret itself. It never leaves the process through
	// fmt, slog or encoding/json.
	Value string `json:"-"`
	// ID identifies the key in logs, health reports and signatures.
	ID string `json:"id"`
	// ExpiresAt is when a previous (or next) key stops being valid; the
	// zero time means it does not expire. It is ignored on the current key,
	// which is valid for as long as it is current.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// String returns the key id, never the value.
func (k Key) String() string { return k.ID }

// GoString keeps %#v from printing the value.
func (k Key) GoString() string { return "keyring.Key{ID:" + strconv.Quote(k.ID) + "}" }

// Format implements [fmt.Formatter] so that every verb prints the key id
// only (%q quotes it).
func (k Key) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(k.ID))
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, k.GoString())
	default:
		fmt.Fprint(f, k.ID)
	}
}

// LogValue implements [slog.LogValuer]: a key logs as its id.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.ID) }

// Expired reports whether k has an expiry that is not after now: a key is
// valid strictly before its ExpiresAt. This is the one expiry rule of the
// SDK: a keyring applies it when it falls back, verifies and reports
// health, and [Set.Unexpired] when a set is built for a consumer that
// cannot judge expiry itself. (A current key never expires; see
// [Key.ExpiresAt].)
func (k Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// Set is the key set a [Keyring] holds: the current key, the key it
// replaced (valid until its ExpiresAt) and a pre-staged next key.
type Set struct {
	// Current is the key to sign and call with. It must have a Value.
	Current Key
	// Previous is the key Current replaced, or nil. It is still accepted
	// and used as a fallback until its ExpiresAt.
	Previous *Key
	// Next is a pre-staged key, or nil. It is accepted by verification so
	// that peers who adopt it first are not rejected.
	Next *Key
	// Version identifies the stored state the set was loaded from (the
	// store version for sets from rotor); empty when the source has none.
	Version string
}

// LogValue implements [slog.LogValuer]: a set logs as its key ids and
// version.
func (s Set) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("current", s.Current.ID)}
	if s.Previous != nil {
		attrs = append(attrs, slog.String("previous", s.Previous.ID))
	}
	if s.Next != nil {
		attrs = append(attrs, slog.String("next", s.Next.ID))
	}
	if s.Version != "" {
		attrs = append(attrs, slog.String("version", s.Version))
	}
	return slog.GroupValue(attrs...)
}

// Unexpired returns a copy of s without the previous and next keys that
// have expired at now ([Key.Expired]). The current key is kept whatever its
// ExpiresAt says: it is valid for as long as it is current.
func (s Set) Unexpired(now time.Time) Set {
	s = s.clone()
	if s.Previous != nil && s.Previous.Expired(now) {
		s.Previous = nil
	}
	if s.Next != nil && s.Next.Expired(now) {
		s.Next = nil
	}
	return s
}

// clone returns s with its own copies of Previous and Next, so that a
// caller can neither change a keyring's set nor see it change.
func (s Set) clone() Set {
	if s.Previous != nil {
		p := *s.Previous
		s.Previous = &p
	}
	if s.Next != nil {
		n := *s.Next
		s.Next = &n
	}
	return s
}

// equal reports whether a and b hold the same keys and version.
func (s Set) equal(o Set) bool {
	return s.Version == o.Version && sameKey(&s.Current, &o.Current) &&
		sameKey(s.Previous, o.Previous) && sameKey(s.Next, o.Next)
}

func sameKey(a, b *Key) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Value == b.Value && a.ID == b.ID && a.ExpiresAt.Equal(b.ExpiresAt)
}

// idFunc derives a key id from a value.
type idFunc func(value string) string

// unsaltedID is the id of a value when no salt is known: the first
// keyid.Len hex characters of its SHA-256 digest.
func unsaltedID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])[:keyid.Len]
}

// saltedID returns the id function rotor itself uses for salt.
func saltedID(salt []byte) idFunc {
	if salt == nil {
		return unsaltedID
	}
	return func(value string) string { return keyid.Of(salt, value) }
}

// maxIDLen bounds key ids so a signature header stays small.
const maxIDLen = 128

// validID reports whether id can appear in a signature string: 1 to
// maxIDLen printable ASCII characters other than space and ','.
func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c > '~' || c == ',' {
			return false
		}
	}
	return true
}

// normalize checks set and returns a private copy of it with every missing
// key id filled in with the unsalted id. The error never contains a value.
func normalize(set Set) (Set, error) {
	set = set.clone()
	if set.Current.Value == "" {
		return Set{}, ErrNoCurrentKey
	}
	slots := [...]struct {
		name string
		key  *Key
	}{{"current", &set.Current}, {"previous", set.Previous}, {"next", set.Next}}
	for i, s := range slots {
		if s.key == nil {
			continue
		}
		if s.key.Value == "" {
			return Set{}, fmt.Errorf("%s key %s has an empty value", s.name, s.key.ID)
		}
		if s.key.ID == "" {
			s.key.ID = unsaltedID(s.key.Value)
		}
		if !validID(s.key.ID) {
			return Set{}, fmt.Errorf("%s key has an invalid id %q: want 1-%d printable characters without spaces or commas", s.name, s.key.ID, maxIDLen)
		}
		for _, o := range slots[:i] {
			if o.key != nil && o.key.ID == s.key.ID && o.key.Value != s.key.Value {
				return Set{}, fmt.Errorf("%s and %s keys share the id %s but differ", o.name, s.name, s.key.ID)
			}
		}
	}
	return set, nil
}
