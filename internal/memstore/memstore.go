// Package memstore is an in-memory store.Store for tests of code that sits
// above the store (the rotation engine, the SDK). It honours the full store
// contract, including compare-and-swap, and passes the conformance suite.
package memstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/rotor-dev/rotor/store"
)

// Store keeps secrets in memory.
type Store struct {
	mu      sync.Mutex
	secrets map[string]entry
}

type entry struct {
	s   *store.Secret
	ver int
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Lister = (*Store)(nil)
)

// New returns an empty store.
func New() *Store { return &Store{secrets: map[string]entry{}} }

// Load returns a copy of the named secret.
func (m *Store) Load(_ context.Context, name string) (*store.Secret, store.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.secrets[name]
	if !ok {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, store.ErrNotFound)
	}
	return e.s.Clone(), store.Version(strconv.Itoa(e.ver)), nil
}

// Save stores a copy of s if expected is the stored version.
func (m *Store) Save(_ context.Context, s *store.Secret, expected store.Version) (store.Version, error) {
	if err := s.Validate(); err != nil {
		return store.NoVersion, fmt.Errorf("save: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.secrets[s.Name]
	have := store.NoVersion
	if ok {
		have = store.Version(strconv.Itoa(e.ver))
	}
	if have != expected {
		return store.NoVersion, fmt.Errorf("save %s: version %q, expected %q: %w", s.Name, have, expected, store.ErrConflict)
	}
	m.secrets[s.Name] = entry{s: s.Clone(), ver: e.ver + 1}
	return store.Version(strconv.Itoa(e.ver + 1)), nil
}

// List returns the sorted names of all secrets.
func (m *Store) List(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.secrets))
	for n := range m.secrets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names, nil
}
