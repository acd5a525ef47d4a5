// Package binding binds a store to the audit chain, so that a stored
// secret put back from an older copy (a backup restored over the store
// file, an old Vault KV version made current again) is refused instead of
// bringing back revoked keys.
//
// # How
//
// [Store] wraps a [store.Store]. Every Save seals the secret it writes
// ([store.Seal]): the save count of the secret, one more than the state
// it replaces; the head of the audit chain as the saver last knew it
// (read at its load, or after, with the records it appended since); and
// a MAC of the whole state, seal included, keyed with a key
// derived from the audit salt ([Key]). After the save it appends a
// version 2 audit record ([audit.Event].StoreVersion) naming the secret,
// its save count and that MAC. Every Load checks the state it read
// against the chain ([audit.Saves]) and refuses, with an error wrapping
// [ErrTampered], a state that:
//
//   - carries a MAC that is not its own: it was edited by somebody
//     without the salt (its seal forged, a field changed);
//   - is older than the last save the chain records for it (its save
//     count is lower), or has that save's count but not its state, or
//     carries no seal while the chain records saves of it: it was put
//     back from an older copy;
//   - was saved after a chain record that the chain no longer holds (the
//     chain is shorter than the head the state carries, or has another
//     record there): the audit log and its anchor, or the shared chain,
//     were put back from an older copy while the store moved on.
//
// A state one or more saves ahead of the chain is accepted: a saver
// stopped between its save and its record leaves exactly that, and the
// next save's record catches the chain up. A state saved before rotor
// sealed its saves is accepted until the chain records a save of it.
//
// # Cost
//
// A Load reads what was appended to the chain since the previous one
// through the same [audit.Saves]: in a long-running process (serve, the
// daemon) a few reads, in a one-shot command one read of the chain at its
// first load, from the chain's saves checkpoint on (see [audit.Saves]:
// the checkpoint and the records after it, not the whole history); on a
// shared chain, once the chain is read, the head
// and what other processes appended. A Save over a version the same Store
// loaded or saved reads nothing ([audit.Saves.Recent]): the store's
// compare-and-swap refuses it if anybody saved the secret since, so the
// chain can hold no newer save of it; any other Save reads the chain as a
// Load does. A Save costs one audit append more; the [Appender] decides
// when it is written (rotor's one-shot commands queue it with the
// operation's batched records, so on a shared chain it costs no chain
// write of its own).
//
// # What it cannot detect
//
// Anybody holding the salt can forge seals and records. A state put back
// from an older copy that was itself never recorded (a saver stopped
// after its save twice in a row, the later state recorded by neither)
// passes as one save ahead. A secret deleted from the store is not told
// from one never created. Putting back an older copy of the store and of
// the chain together, from the same moment, looks like a deployment that
// stopped then; shipping audit records elsewhere as they are written
// closes that gap. `rotor audit verify` checks every stored secret
// against the whole chain, including the record each one names.
package binding

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/store"
)

// ErrTampered is wrapped by every refusal of a stored state: it is older
// than the audit chain says, its seal is not its own, or the chain is
// older than the state.
var ErrTampered = errors.New("the store does not match the audit chain")

// Error is a refusal of a stored secret. It wraps [ErrTampered].
type Error struct {
	Secret string
	// Reason says what does not match, for people. It never holds a key
	// value.
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("secret %s: %s", e.Secret, e.Reason)
}

// Unwrap returns [ErrTampered].
func (e *Error) Unwrap() error { return ErrTampered }

// ActionSave is the action of the audit record of a save.
const ActionSave = "store.save"

// keyDomain derives the seal key from the salt, so that a seal is never
// valid as any other MAC made with the salt.
const keyDomain = "rotor-store-seal-key-v1"

// Key returns the key seals are made with, derived from the deployment's
// audit salt.
func Key(salt []byte) []byte {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(keyDomain))
	return m.Sum(nil)
}

// Appender appends events to the audit chain; *audit.Log and
// *audit.Shared are Appenders.
type Appender interface {
	Append(ctx context.Context, e audit.Event) (audit.Record, error)
}

// Options configure a [Store].
type Options struct {
	// Store is the store bound to the chain.
	Store store.Store
	// Saves reads the chain's record of saves; Appender writes to the
	// same chain.
	Saves    *audit.Saves
	Appender Appender
	// Salt is the deployment's audit salt; seals are keyed with
	// [Key](Salt).
	Salt []byte
	// Initiator is who the records of saves name.
	Initiator string
	// AfterSave, when set, is called after each successful save and
	// before its record is appended: tests kill rotor there
	// (ROTOR_FAULT=crash-after:store.saved, see [SavedPoint]).
	AfterSave func(name string)
}

// SavedPoint names the point between a save and its record, for the
// crash knob of tests (package internal/testknobs).
const SavedPoint = "store.saved"

// Store is a [store.Store] bound to the audit chain: see the package doc.
// It is safe for concurrent use.
type Store struct {
	st        store.Store
	saves     *audit.Saves
	app       Appender
	key       []byte
	initiator string
	afterSave func(name string)

	mu sync.Mutex
	// sealed remembers, per secret, the seal of the state of the last
	// version this Store loaded or saved: a caller saving over the state
	// it saved before hands back that state with its old seal.
	sealed map[string]sealedAt
}

type sealedAt struct {
	v    store.Version
	seal store.Seal
}

var _ store.Store = (*Store)(nil)

// New returns st bound to the chain o names.
func New(o Options) (*Store, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("binding: no store")
	case o.Saves == nil || o.Appender == nil:
		return nil, errors.New("binding: no audit chain")
	case len(o.Salt) < audit.MinSaltSize:
		return nil, fmt.Errorf("binding: salt is %d bytes, want at least %d", len(o.Salt), audit.MinSaltSize)
	case o.Initiator == "":
		return nil, errors.New("binding: no initiator")
	}
	return &Store{st: o.Store, saves: o.Saves, app: o.Appender, key: Key(o.Salt), initiator: o.Initiator, afterSave: o.AfterSave, sealed: map[string]sealedAt{}}, nil
}

// Unwrap returns the store s binds, for callers that need its own
// capabilities (listing, history, watching).
func (s *Store) Unwrap() store.Store { return s.st }

// Load implements [store.Store]: the stored secret, once it is checked
// against the audit chain. A refused state is an error wrapping
// [ErrTampered].
func (s *Store) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	// The chain first, then the store: every save the chain records by
	// then was made before the store is read, so a current store is never
	// older than the chain, however many savers race this load.
	head, last, recorded, err := s.saves.Latest(ctx, name)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("check %s against the audit chain: %w", name, err)
	}
	sec, v, err := s.st.Load(ctx, name)
	if err != nil {
		return nil, store.NoVersion, err
	}
	if sec.Seal != nil && sec.Seal.ChainSeq > head.Seq {
		// The state was saved after a record this load had not read yet
		// (appended since, or not headed yet): read on to it, after the
		// store. Only the head is taken from that read: a save recorded
		// after the store was read may be newer than the state read.
		// (A seal naming the head read needs no second read: the record
		// at a seq never changes, so its hash is checked as it is.)
		if head, _, _, err = s.saves.LatestAfter(ctx, name, sec.Seal.ChainSeq); err != nil {
			return nil, store.NoVersion, fmt.Errorf("check %s against the audit chain: %w", name, err)
		}
	}
	if err := Check(s.key, sec, head, last, recorded); err != nil {
		return nil, store.NoVersion, err
	}
	if sec.Seal != nil {
		s.remember(name, v, *sec.Seal)
	}
	return sec, v, nil
}

// Check checks the stored secret sec against the chain whose head is head
// and whose last recorded save of sec is last (recorded is false when it
// records none), as [Store.Load] does; key is [Key] of the salt.
func Check(key []byte, sec *store.Secret, head audit.ChainHead, last audit.Save, recorded bool) error {
	refuse := func(format string, args ...any) error {
		return &Error{Secret: sec.Name, Reason: fmt.Sprintf(format, args...)}
	}
	seal := sec.Seal
	if seal == nil {
		if recorded {
			return refuse("the stored state carries no seal but the audit chain records save %d of it (record %d): an older copy of the store was put back", last.Version, last.Seq)
		}
		return nil
	}
	if !hmac.Equal([]byte(sec.StateDigest(key)), []byte(seal.MAC)) {
		return refuse("the stored state does not match its seal: it was edited, or its seal forged, by somebody without the audit salt")
	}
	switch {
	case seal.ChainSeq > head.Seq:
		return refuse("the stored state was saved after audit record %d but the audit chain ends at record %d: the audit chain was put back from an older copy", seal.ChainSeq, head.Seq)
	case seal.ChainSeq == head.Seq && seal.ChainSeq > 0 && seal.ChainHash != head.Hash:
		return refuse("the stored state was saved after audit record %d but the chain holds another record %d: the audit chain was replaced", seal.ChainSeq, head.Seq)
	case !recorded:
		return nil
	case seal.Version < last.Version:
		return refuse("the stored state is save %d but the audit chain records save %d (record %d): an older copy of the store was put back", seal.Version, last.Version, last.Seq)
	case seal.Version == last.Version && !hmac.Equal([]byte(seal.MAC), []byte(last.Digest)):
		return refuse("the stored state is save %d but not the state the audit chain records for it (record %d)", seal.Version, last.Seq)
	}
	return nil
}

// Save implements [store.Store]: it seals sec, saves it and appends the
// record of the save. When the save succeeded but the record could not be
// appended, Save returns the new version with the error; the state is
// stored, one save ahead of the chain, which every Load accepts.
func (s *Store) Save(ctx context.Context, sec *store.Secret, expected store.Version) (store.Version, error) {
	head, last, err := s.chainForSave(ctx, sec.Name, expected)
	if err != nil {
		return store.NoVersion, fmt.Errorf("save %s: read the audit chain: %w", sec.Name, err)
	}
	base := s.baseVersion(sec, expected)
	// Never reuse a save count the chain has recorded: a secret created
	// again, or a saver behind the chain, continues after it.
	base = max(base, last.Version)
	c := sec.Clone()
	c.Seal = &store.Seal{Version: base + 1, ChainSeq: head.Seq, ChainHash: head.Hash}
	c.Seal.MAC = c.StateDigest(s.key)
	v, err := s.st.Save(ctx, c, expected)
	if err != nil {
		return v, err
	}
	s.remember(sec.Name, v, *c.Seal)
	if s.afterSave != nil {
		s.afterSave(sec.Name)
	}
	_, err = s.app.Append(ctx, audit.Event{
		Initiator:    s.initiator,
		Action:       ActionSave,
		Secret:       sec.Name,
		Status:       audit.StatusSucceeded,
		StoreVersion: c.Seal.Version,
		StateDigest:  c.Seal.MAC,
	})
	if err != nil {
		return v, fmt.Errorf("save %s: saved, but the audit record of the save was not written: %w", sec.Name, err)
	}
	return v, nil
}

// chainForSave returns the chain's head and last save of name for the
// seal of a save over expected. A save over a version this Store loaded
// or saved itself takes them from the chain as this process knows it
// ([audit.Saves.Recent]: as last read, and what it appended since),
// without asking the chain's backend: the store's compare-and-swap
// refuses the save if anybody saved the secret since that version, so no
// save the chain records since can be newer than it; and a seal naming
// an earlier head is as true, only less precise. Any other save reads
// the chain.
func (s *Store) chainForSave(ctx context.Context, name string, expected store.Version) (audit.ChainHead, audit.Save, error) {
	var (
		head audit.ChainHead
		last audit.Save
		err  error
	)
	if expected != store.NoVersion && s.knows(name, expected) {
		head, last, _, err = s.saves.Recent(ctx, name)
	} else {
		head, last, _, err = s.saves.Latest(ctx, name)
	}
	return head, last, err
}

// knows reports whether this Store last loaded or saved name at v.
func (s *Store) knows(name string, v store.Version) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.sealed[name]
	return ok && at.v == v
}

// baseVersion is the save count of the state sec replaces: the seal this
// Store last saw at expected, or the one sec carries.
func (s *Store) baseVersion(sec *store.Secret, expected store.Version) uint64 {
	if expected == store.NoVersion {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.sealed[sec.Name]; ok && at.v == expected {
		return at.seal.Version
	}
	if sec.Seal != nil {
		return sec.Seal.Version
	}
	return 0
}

func (s *Store) remember(name string, v store.Version, seal store.Seal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealed[name] = sealedAt{v: v, seal: seal}
}
