// Package servertest provides a [server.Backend] for tests: rotor's real
// rotation engine over an in-memory store, with a test provider that mints
// numbered values and a real audit log in a temporary directory.
//
// # Use
//
//	b := servertest.NewBackend(t, "clerk")
//	api, _ := server.New(b, auth, b.Log)
//	b.Rotate(t.Context(), "clerk", "user:setup") // current → previous
//
// [Backend.Values] returns every secret value the backend ever held, for
// tests that scan output for leaks.
//
// # The OpenAPI document
//
// [Validate] wraps the API under test so that every response is checked
// against the OpenAPI document of package api with kin-openapi
// (openapi3filter), a maintained validator of the whole OpenAPI 3 schema
// language rather than a hand-written subset: a field the document lacks,
// a wrong type, an undocumented status or path fails the test.
//
//	srv := httptest.NewServer(servertest.Validate(t, api))
package servertest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/store"
)

// Backend is a [server.Backend] over the rotation engine and an in-memory
// store. Create one with [NewBackend].
type Backend struct {
	// Store holds the secrets.
	Store store.Store
	// Provider mints, tests and revokes values.
	Provider *rotationtest.Provider
	// Clock is the engine's clock.
	Clock *rotationtest.Clock
	// Log is the audit log the engine records to; pass it to server.New
	// too, so one log holds everything.
	Log *audit.Log
	// Salt keys key ids and the audit log.
	Salt []byte

	names []string

	mu     sync.Mutex
	staged []string
	ready  error
}

var (
	_ server.Backend    = (*Backend)(nil)
	_ server.Overviewer = (*Backend)(nil)
)

// NewBackend returns a backend managing the secrets called names, each
// issued once (a current key, no previous).
func NewBackend(t testing.TB, names ...string) *Backend {
	t.Helper()
	dir := t.TempDir()
	salt := []byte("servertest-salt-0123456789")
	log, err := audit.Open(filepath.Join(dir, "audit.log"), filepath.Join(dir, "audit.anchor"), salt)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{
		Store: &memStore{secrets: map[string]memEntry{}}, Provider: rotationtest.NewProvider(),
		Clock: rotationtest.NewClock(), Log: log, Salt: salt, names: slices.Clone(names),
	}
	for _, n := range names {
		if _, err := b.Rotate(t.Context(), n, audit.InitiatorSystem); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// SetReady makes Ready return err.
func (b *Backend) SetReady(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = err
}

// Values returns every value the backend has held: minted and staged.
func (b *Backend) Values() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(b.Provider.Minted(), b.staged...)
}

func (b *Backend) engine(initiator string) *rotation.Engine {
	return &rotation.Engine{
		Store: b.Store, Audit: recorder{b.Log, initiator}, Salt: b.Salt,
		Initiator: initiator, Holder: rotation.NewHolder(), Now: b.Clock.Now,
	}
}

func (b *Backend) secret(name string) (rotation.Secret, error) {
	if !slices.Contains(b.names, name) {
		return rotation.Secret{}, fmt.Errorf("secret %s is not configured: %w", name, store.ErrNotFound)
	}
	return rotation.Secret{Name: name, Provider: b.Provider, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: 10 * time.Minute}, nil
}

// Names returns the configured names.
func (b *Backend) Names(context.Context) ([]string, error) { return slices.Clone(b.names), nil }

// Status returns the secret's status as the CLI's backend does, with
// provider "test" and no schedule.
func (b *Backend) Status(ctx context.Context, name string) (api.Status, error) {
	if _, err := b.secret(name); err != nil {
		return api.Status{}, err
	}
	s, ver, err := b.Store.Load(ctx, name)
	if err != nil {
		return api.Status{}, err
	}
	v := api.StatusOf(s)
	v.Provider = "test"
	v.Version = string(ver)
	return v, nil
}

// Overview returns the stored secret and its schedule, for the status
// page.
func (b *Backend) Overview(ctx context.Context, name string) (server.Overview, error) {
	sec, err := b.secret(name)
	if err != nil {
		return server.Overview{}, err
	}
	s, _, err := b.Store.Load(ctx, name)
	if err != nil {
		return server.Overview{}, err
	}
	return server.Overview{Secret: s, Provider: "test", NextRotationAt: sec.NextRotation(s)}, nil
}

// Rotate runs a rotation.
func (b *Backend) Rotate(ctx context.Context, name, initiator string) (api.Result, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Result{}, err
	}
	res, err := b.engine(initiator).Rotate(ctx, sec)
	return api.ResultOf(res), err
}

// Rollback rolls back.
func (b *Backend) Rollback(ctx context.Context, name, initiator string) (api.Result, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Result{}, err
	}
	res, err := b.engine(initiator).Rollback(ctx, sec)
	return api.ResultOf(res), err
}

// Stage stages value as next.
func (b *Backend) Stage(ctx context.Context, name, value string, meta map[string]string, initiator string) (api.Staged, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Staged{}, err
	}
	b.mu.Lock()
	b.staged = append(b.staged, value)
	b.mu.Unlock()
	id, err := b.engine(initiator).Stage(ctx, sec, value, meta)
	if err != nil {
		return api.Staged{}, err
	}
	return api.Staged{Secret: name, KeyID: id}, nil
}

// Revoke revokes.
func (b *Backend) Revoke(ctx context.Context, name string, force bool, initiator string) (api.Revoked, error) {
	sec, err := b.secret(name)
	if err != nil {
		return api.Revoked{}, err
	}
	res, err := b.engine(initiator).Revoke(ctx, sec, rotation.RevokeOptions{Force: force})
	return api.RevokedOf(res), err
}

// KeySet returns the secret's key set as server.KeySetOf builds it.
func (b *Backend) KeySet(ctx context.Context, name string) (server.KeySet, error) {
	if _, err := b.secret(name); err != nil {
		return server.KeySet{}, err
	}
	s, ver, err := b.Store.Load(ctx, name)
	if err != nil {
		return server.KeySet{}, err
	}
	return server.KeySetOf(s, ver, b.Clock.Now())
}

// Ready returns what SetReady set.
func (b *Backend) Ready(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}

// recorder writes engine events to the audit log as initiator.
type recorder struct {
	log       *audit.Log
	initiator string
}

// Record appends e to the audit log.
func (r recorder) Record(ctx context.Context, e rotation.Event) error {
	_, err := r.log.Append(ctx, audit.Event{Initiator: r.initiator, Action: e.Action, Secret: e.Secret, KeyID: e.KeyID, Status: e.Status, Detail: e.AuditDetail()})
	return err
}

// memStore is a store.Store in memory, with integer versions.
type memStore struct {
	mu      sync.Mutex
	secrets map[string]memEntry
}

type memEntry struct {
	s   *store.Secret
	ver uint64
}

// Load returns a copy of the stored secret.
func (m *memStore) Load(_ context.Context, name string) (*store.Secret, store.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.secrets[name]
	if !ok {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, store.ErrNotFound)
	}
	return e.s.Clone(), store.Version(strconv.FormatUint(e.ver, 10)), nil
}

// Save stores a copy of s if expected is the stored version.
func (m *memStore) Save(_ context.Context, s *store.Secret, expected store.Version) (store.Version, error) {
	if err := s.Validate(); err != nil {
		return store.NoVersion, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.secrets[s.Name]
	have := store.NoVersion
	if ok {
		have = store.Version(strconv.FormatUint(e.ver, 10))
	}
	if have != expected {
		return store.NoVersion, fmt.Errorf("save %s: %w", s.Name, store.ErrConflict)
	}
	e = memEntry{s: s.Clone(), ver: e.ver + 1}
	m.secrets[s.Name] = e
	return store.Version(strconv.FormatUint(e.ver, 10)), nil
}
