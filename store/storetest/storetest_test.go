package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/storetest"
)

// TestRunMemoryStore runs the suite against a correct in-memory store: the
// suite itself must not reject a store that honours the contract.
func TestRunMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return newMemStore("") })
}

// brokenEnv selects the flaw memStore simulates in TestBrokenStoreHelper.
const brokenEnv = "STORETEST_BROKEN_STORE"

// TestRunDetectsBrokenStores runs the suite, in a child process, against
// stores with one flaw each and checks that the subtests written for that
// flaw fail.
func TestRunDetectsBrokenStores(t *testing.T) {
	tests := []struct {
		flaw string
		want []string // subtests that must fail
	}{
		{"plain-not-found", []string{"LoadUnknownNameIsNotFound"}},
		{"overwrite-on-create", []string{"CreateTwiceConflicts"}},
		{"no-cas", []string{"StaleVersionConflicts", "ConflictingWriters", "SaveMissingSecretWithVersionConflicts"}},
		{"check-then-write", []string{"ConcurrentIncrements"}},
		{"truncate-times", []string{"RoundTripAllFields"}},
		{"drop-meta", []string{"RoundTripAllFields"}},
		{"drop-seal", []string{"RoundTripAllFields"}},
		{"merge-save", []string{"SaveReplacesWholeSecret"}},
		{"content-version", []string{"VersionChangesOnEverySave"}},
		{"alias-load", []string{"LoadReturnsCopy"}},
		{"alias-save", []string{"SaveCopiesInput"}},
		{"case-insensitive", []string{"NamesAreCaseSensitive"}},
		{"unsorted-list", []string{"List"}},
		{"no-validate", []string{"SaveRejectsInvalidSecret"}},
	}
	for _, tc := range tests {
		t.Run(tc.flaw, func(t *testing.T) {
			t.Parallel()
			// Only the targeted subtests run: a flawed store may break
			// others badly enough (a shared map written concurrently) to
			// crash the process before they report.
			run := "^TestBrokenStoreHelper$/^(" + strings.Join(tc.want, "|") + ")$"
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+run, "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite against a store with flaw %s: err = %v, want a failing test run\n%s", tc.flaw, err, out)
			}
			for _, sub := range tc.want {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenStoreHelper/"+sub+" ") {
					t.Errorf("subtest %s did not fail against a store with flaw %s\n%s", sub, tc.flaw, out)
				}
			}
			for _, v := range storeValues() {
				if strings.Contains(string(out), v) {
					t.Errorf("suite output contains a key value")
				}
			}
		})
	}
}

// TestBrokenStoreHelper runs the suite against a flawed store when started by
// TestRunDetectsBrokenStores, and does nothing otherwise.
func TestBrokenStoreHelper(t *testing.T) {
	flaw := os.Getenv(brokenEnv)
	if flaw == "" {
		return
	}
	storetest.Run(t, func(*testing.T) store.Store { return newMemStore(flaw) })
}

// storeValues returns key values the suite's fixtures use, to check that
// failure output never prints them.
func storeValues() []string {
	return []string{"sk_test_storetest_current_", "sk_test_storetest_pending_", "BEGIN KEY"}
}

// memStore is a minimal in-memory store. With a non-empty flaw it breaks
// the contract in that one way.
type memStore struct {
	flaw string

	mu      sync.Mutex
	secrets map[string]memEntry
	seq     uint64
}

type memEntry struct {
	secret  *store.Secret
	version store.Version
}

var (
	_ store.Store  = (*memStore)(nil)
	_ store.Lister = (*memStore)(nil)
)

func newMemStore(flaw string) *memStore {
	return &memStore{flaw: flaw, secrets: map[string]memEntry{}}
}

func (m *memStore) key(name string) string {
	if m.flaw == "case-insensitive" {
		return strings.ToLower(name)
	}
	return name
}

func (m *memStore) Load(_ context.Context, name string) (*store.Secret, store.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.secrets[m.key(name)]
	if !ok {
		if m.flaw == "plain-not-found" {
			return nil, store.NoVersion, errors.New("no such secret")
		}
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, store.ErrNotFound)
	}
	if m.flaw == "alias-load" {
		return e.secret, e.version, nil
	}
	s := e.secret.Clone()
	if m.flaw == "case-insensitive" {
		s.Name = name
	}
	return s, e.version, nil
}

func (m *memStore) Save(_ context.Context, s *store.Secret, expected store.Version) (store.Version, error) {
	if m.flaw != "no-validate" {
		if err := s.Validate(); err != nil {
			return "", fmt.Errorf("save: %w", err)
		}
	}
	if m.flaw == "check-then-write" {
		return m.checkThenWrite(s, expected)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(s.Name, expected); err != nil {
		return "", err
	}
	return m.write(s), nil
}

// checkThenWrite compares versions and writes under two separate critical
// sections, the classic lost-update bug.
func (m *memStore) checkThenWrite(s *store.Secret, expected store.Version) (store.Version, error) {
	m.mu.Lock()
	err := m.check(s.Name, expected)
	m.mu.Unlock()
	if err != nil {
		return "", err
	}
	// Widen the window between check and write without sleeping.
	for range 1000 {
		runtime.Gosched()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.write(s), nil
}

func (m *memStore) check(name string, expected store.Version) error {
	e, exists := m.secrets[m.key(name)]
	switch {
	case m.flaw == "overwrite-on-create" && expected == store.NoVersion:
		return nil
	case m.flaw == "no-cas" && expected != store.NoVersion:
		return nil
	case !exists && expected == store.NoVersion:
		return nil
	case !exists:
		return fmt.Errorf("save %s: secret does not exist: %w", name, store.ErrConflict)
	case e.version != expected:
		return fmt.Errorf("save %s: version %s, expected %s: %w", name, e.version, expected, store.ErrConflict)
	}
	return nil
}

func (m *memStore) write(s *store.Secret) store.Version {
	stored := s.Clone()
	switch m.flaw {
	case "alias-save":
		stored = s
	case "truncate-times":
		stored.LastRotatedAt = stored.LastRotatedAt.Truncate(time.Microsecond)
		if stored.Current != nil {
			stored.Current.CreatedAt = stored.Current.CreatedAt.Truncate(time.Microsecond)
		}
	case "drop-meta":
		for i := range stored.Retired {
			stored.Retired[i].Meta = nil
		}
	case "drop-seal":
		stored.Seal = nil
	case "merge-save":
		if old, ok := m.secrets[m.key(s.Name)]; ok {
			for _, sl := range store.Slots {
				if stored.Slot(sl) == nil {
					setSlot(stored, sl, old.secret.Slot(sl).Clone())
				}
			}
		}
	}
	m.seq++
	v := store.Version(strconv.FormatUint(m.seq, 10))
	if m.flaw == "content-version" {
		h := fnv.New64a()
		for _, val := range s.Values() {
			h.Write([]byte(val))
		}
		v = store.Version(strconv.FormatUint(h.Sum64(), 16))
	}
	m.secrets[m.key(s.Name)] = memEntry{secret: stored, version: v}
	return v
}

func setSlot(s *store.Secret, sl store.Slot, k *store.Key) {
	switch sl {
	case store.SlotCurrent:
		s.Current = k
	case store.SlotPrevious:
		s.Previous = k
	case store.SlotNext:
		s.Next = k
	case store.SlotPending:
		s.Pending = k
	}
}

func (m *memStore) List(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.secrets))
	for _, e := range m.secrets {
		names = append(names, e.secret.Name)
	}
	slices.Sort(names)
	if m.flaw == "unsorted-list" {
		slices.Reverse(names)
	}
	return names, nil
}
