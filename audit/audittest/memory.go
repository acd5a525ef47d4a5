package audittest

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"github.com/rotor-dev/rotor/audit"
)

// Memory is an [audit.Backend] held in memory: the reference the suite is
// checked against, and a backend for tests of code that uses a
// [audit.Shared] chain. Its zero value is empty and ready to use.
type Memory struct {
	mu   sync.Mutex
	vals map[string]memValue
	// Tamper, when set, is called with each stored value a Get returns
	// and may return another: tests use it to play an attacker.
	Tamper func(key string, value []byte) []byte
}

type memValue struct {
	data    []byte
	version int
}

var _ audit.Backend = (*Memory)(nil)

// Get implements [audit.Backend].
func (m *Memory) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	if err := ctx.Err(); err != nil {
		return nil, audit.NoVersion, err
	}
	m.mu.Lock()
	v, ok := m.vals[key]
	tamper := m.Tamper
	m.mu.Unlock()
	if !ok {
		return nil, audit.NoVersion, fmt.Errorf("get %s: %w", key, audit.ErrNotExist)
	}
	data := append([]byte(nil), v.data...)
	if tamper != nil {
		data = tamper(key, data)
	}
	return data, audit.Version(strconv.Itoa(v.version)), nil
}

// Put implements [audit.Backend].
func (m *Memory) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	if err := ctx.Err(); err != nil {
		return audit.NoVersion, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.vals[key]
	current := audit.NoVersion
	if ok {
		current = audit.Version(strconv.Itoa(v.version))
	}
	if current != expected {
		return audit.NoVersion, fmt.Errorf("put %s: %w", key, audit.ErrConflict)
	}
	if m.vals == nil {
		m.vals = map[string]memValue{}
	}
	v = memValue{data: append([]byte(nil), value...), version: v.version + 1}
	m.vals[key] = v
	return audit.Version(strconv.Itoa(v.version)), nil
}

// Delete removes key, as somebody with delete rights on the store could.
func (m *Memory) Delete(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.vals, key)
}

// Snapshot returns a copy of everything m holds, for [Memory.Restore].
func (m *Memory) Snapshot() map[string][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := make(map[string][]byte, len(m.vals))
	for k, v := range m.vals {
		snap[k] = append([]byte(nil), v.data...)
	}
	return snap
}

// Restore puts back what a [Memory.Snapshot] held and removes every other
// key, as somebody restoring an older backup of the store could. Versions
// keep counting up, as a store's do.
func (m *Memory) Restore(snap map[string][]byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.vals
	m.vals = make(map[string]memValue, len(snap))
	for k, data := range snap {
		m.vals[k] = memValue{data: append([]byte(nil), data...), version: old[k].version + 1}
	}
}
