// Package storetest is the conformance suite every [store.Store]
// implementation must pass.
//
// # Usage
//
// A store package calls [Run] from one of its tests, with a constructor that
// returns a fresh, empty store for every subtest:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			return newTestStore(t) // empty; cleaned up with t.Cleanup
//		})
//	}
//
// Stores backed by a real server (Vault, AWS Secrets Manager) give each
// subtest its own namespace, for example a path or name prefix derived from
// t.Name(), and remove it in t.Cleanup. The suite only uses names that pass
// [store.ValidateName].
//
// # What it checks
//
// The suite checks the contract written on [store.Store]: ErrNotFound for
// unknown names, create-only semantics of [store.NoVersion], a lossless round
// trip of every field of [store.Secret] (timestamps are compared with
// time.Time.Equal, so a store may normalise them to UTC but not drop
// nanoseconds), compare-and-swap under concurrent writers with no lost
// update, copies in and out, case-sensitive names, the longest names
// [store.ValidateName] accepts (upper case, lower case, mixed), [store.Lister] when the
// store implements it, and that invalid secrets are rejected without a write.
//
// # Cost
//
// The suite never sleeps. Its concurrent subtests run 8 goroutines at most
// and make a few hundred Load and Save calls in all, so it stays fast
// against a local server.
//
// # Secret hygiene
//
// Failure messages name the field that differs and never print a key value,
// so the suite is safe to run against stores holding real-looking values.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

const (
	// writers is the number of goroutines the concurrency subtests run at
	// once.
	writers = 8
	// conflictRounds is how many rounds of simultaneous writers
	// ConflictingWriters runs.
	conflictRounds = 3
	// incrementsPerWriter is how many increments each goroutine of
	// ConcurrentIncrements makes.
	incrementsPerWriter = 10
)

// Run runs the conformance suite as subtests of t. newStore must return a
// fresh, empty store each time it is called; it is called once per subtest
// with that subtest's t.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, st store.Store)
	}{
		{"LoadUnknownNameIsNotFound", testLoadUnknown},
		{"CreateTwiceConflicts", testCreateTwice},
		{"RoundTripAllFields", testRoundTripAll},
		{"RoundTripSparseSecret", testRoundTripSparse},
		{"SaveReplacesWholeSecret", testSaveReplaces},
		{"StaleVersionConflicts", testStaleVersion},
		{"VersionChangesOnEverySave", testVersionChanges},
		{"SaveMissingSecretWithVersionConflicts", testSaveMissingWithVersion},
		{"ConflictingWriters", testConflictingWriters},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"LoadReturnsCopy", testLoadReturnsCopy},
		{"SaveCopiesInput", testSaveCopiesInput},
		{"NamesAreCaseSensitive", testCaseSensitive},
		{"LongestNames", testLongestNames},
		{"List", testList},
		{"SaveRejectsInvalidSecret", testRejectsInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, newStore(t))
		})
	}
}

func testLoadUnknown(t *testing.T, st store.Store) {
	s, v, err := st.Load(t.Context(), "no-such-secret")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of an unknown name: err = %v, want an error wrapping store.ErrNotFound", err)
	}
	if s != nil || v != store.NoVersion {
		t.Errorf("Load of an unknown name returned secret %v and version %q, want nil and NoVersion", s != nil, v)
	}
}

func testCreateTwice(t *testing.T, st store.Store) {
	ctx := t.Context()
	first := fullSecret("app-key")
	v1 := create(t, st, first)
	if v1 == store.NoVersion {
		t.Fatal("Save with NoVersion returned NoVersion, want the new version")
	}

	second := sparseSecret("app-key")
	_, err := st.Save(ctx, second, store.NoVersion)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second create with NoVersion: err = %v, want an error wrapping store.ErrConflict", err)
	}
	assertStored(t, st, first, v1)
}

func testRoundTripAll(t *testing.T, st store.Store) {
	want := fullSecret("clerk-secret-key")
	v := create(t, st, want)
	assertStored(t, st, want, v)
}

func testRoundTripSparse(t *testing.T, st store.Store) {
	want := sparseSecret("webhook.signing")
	v := create(t, st, want)
	got := assertStored(t, st, want, v)
	for _, sl := range []store.Slot{store.SlotPrevious, store.SlotPending} {
		if got.Slot(sl) != nil {
			t.Errorf("slot %s: got a key, want nil", sl)
		}
	}
	if got.Rotation != nil {
		t.Error("Rotation: got non-nil, want nil")
	}
	if !got.LastRotatedAt.IsZero() {
		t.Errorf("LastRotatedAt = %v, want the zero time", got.LastRotatedAt)
	}
}

// testSaveReplaces catches stores that merge a save into the stored secret
// (a PATCH instead of a PUT): emptying a slot must empty it in the store.
func testSaveReplaces(t *testing.T, st store.Store) {
	v1 := create(t, st, fullSecret("db_password"))
	want := sparseSecret("db_password")
	v2 := save(t, st, want, v1)
	assertStored(t, st, want, v2)
}

func testStaleVersion(t *testing.T, st store.Store) {
	ctx := t.Context()
	s := fullSecret("hmac-key")
	v1 := create(t, st, s)

	s.Current.Meta["step"] = "second"
	v2 := save(t, st, s, v1)

	stale := s.Clone()
	stale.Current.Meta["step"] = "stale"
	stale.Pending = nil
	_, err := st.Save(ctx, stale, v1)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save with a stale version: err = %v, want an error wrapping store.ErrConflict", err)
	}
	assertStored(t, st, s, v2)

	s.Current.Meta["step"] = "third"
	v3 := save(t, st, s, v2)
	assertStored(t, st, s, v3)
}

func testVersionChanges(t *testing.T, st store.Store) {
	s := sparseSecret("session-key")
	seen := map[store.Version]int{}
	v := create(t, st, s)
	seen[v] = 0
	// Saving identical content must still produce a new version, or a
	// rotator holding an old version could overwrite a newer state that
	// happens to look the same (ABA).
	for i := 1; i <= 3; i++ {
		v = save(t, st, s, v)
		if prev, dup := seen[v]; dup {
			t.Fatalf("save %d returned version %q, already returned by save %d", i, v, prev)
		}
		seen[v] = i
		_, loaded, err := st.Load(t.Context(), s.Name)
		if err != nil {
			t.Fatalf("Load after save %d: %v", i, err)
		}
		if loaded != v {
			t.Fatalf("Load after save %d: version %q, want %q as returned by Save", i, loaded, v)
		}
	}
}

func testSaveMissingWithVersion(t *testing.T, st store.Store) {
	ctx := t.Context()
	// A version this store really issued, but for another secret.
	v := create(t, st, sparseSecret("other"))
	_, err := st.Save(ctx, sparseSecret("missing"), v)
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Save of a missing secret with a version: err = %v, want an error wrapping store.ErrConflict", err)
	}
	if _, _, err := st.Load(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load after the failed save: err = %v, want store.ErrNotFound", err)
	}
}

// testConflictingWriters lets several goroutines load the same version and
// then save at once: exactly one may win each round.
func testConflictingWriters(t *testing.T, st store.Store) {
	const name = "contended"
	create(t, st, counterSecret(name))
	for round := 1; round <= conflictRounds; round++ {
		errs := loadThenSaveAtOnce(t.Context(), st, name)
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: writers %d and %d both saved the version they loaded", round, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: writer %d: err = %v, want nil or an error wrapping store.ErrConflict", round, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: no writer saved", round)
		}
		got, _, err := st.Load(t.Context(), name)
		if err != nil {
			t.Fatalf("round %d: Load: %v", round, err)
		}
		if n := counter(t, got); n != round {
			t.Fatalf("round %d: counter = %d, want %d (one increment per round)", round, n, round)
		}
		if w := got.Current.Meta["writer"]; w != strconv.Itoa(winner) {
			t.Fatalf("round %d: stored secret was written by writer %s, want the winner %d", round, w, winner)
		}
	}
}

// loadThenSaveAtOnce starts one goroutine per writer. Each loads name, waits
// until all have loaded, then increments the counter and saves with the
// version it loaded. It returns each writer's Save (or Load) error.
func loadThenSaveAtOnce(ctx context.Context, st store.Store, name string) []error {
	errs := make([]error, writers)
	var loaded, done sync.WaitGroup
	start := make(chan struct{})
	loaded.Add(writers)
	for i := range writers {
		done.Go(func() {
			s, v, err := st.Load(ctx, name)
			loaded.Done()
			if err != nil {
				errs[i] = fmt.Errorf("load: %w", err)
				return
			}
			<-start
			n, err := counterOf(s)
			if err != nil {
				errs[i] = err
				return
			}
			setCounter(s, n+1)
			s.Current.Meta["writer"] = strconv.Itoa(i)
			_, errs[i] = st.Save(ctx, s, v)
		})
	}
	loaded.Wait()
	close(start)
	done.Wait()
	return errs
}

// testConcurrentIncrements runs several goroutines that each increment a
// counter incrementsPerWriter times with load-modify-save retry loops. A
// store without a real compare-and-swap loses updates.
func testConcurrentIncrements(t *testing.T, st store.Store) {
	const name = "counter"
	const total = writers * incrementsPerWriter
	create(t, st, counterSecret(name))

	var (
		mu      sync.Mutex
		written []int // counter value of every successful save
		wg      sync.WaitGroup
	)
	for range writers {
		wg.Go(func() {
			for range incrementsPerWriter {
				n, err := increment(t.Context(), st, name, total)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				written = append(written, n)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	got, _, err := st.Load(t.Context(), name)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if n := counter(t, got); n != total {
		t.Errorf("counter = %d after %d successful increments, want %d", n, len(written), total)
	}
	slices.Sort(written)
	for i, n := range written {
		if n != i+1 {
			t.Fatalf("successful saves wrote counter values %v, want each of 1..%d exactly once", written, total)
		}
	}
}

// increment adds one to the counter of name with a load-modify-save loop and
// returns the value it wrote. Every failed attempt of one caller means some
// other save succeeded in between, so maxConflicts (the number of saves the
// whole test makes) bounds the loop without a timeout.
func increment(ctx context.Context, st store.Store, name string, maxConflicts int) (int, error) {
	for range maxConflicts + 1 {
		s, v, err := st.Load(ctx, name)
		if err != nil {
			return 0, fmt.Errorf("load: %w", err)
		}
		n, err := counterOf(s)
		if err != nil {
			return 0, err
		}
		setCounter(s, n+1)
		_, err = st.Save(ctx, s, v)
		if err == nil {
			return n + 1, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return 0, fmt.Errorf("save: %w", err)
		}
	}
	return 0, fmt.Errorf("increment gave up after %d conflicts, more than the saves of the whole test", maxConflicts+1)
}

func testLoadReturnsCopy(t *testing.T, st store.Store) {
	want := fullSecret("copy-out")
	v := create(t, st, want)

	got, _, err := st.Load(t.Context(), want.Name)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	mutate(got)
	assertStored(t, st, want, v)
}

func testSaveCopiesInput(t *testing.T, st store.Store) {
	s := fullSecret("copy-in")
	want := s.Clone()
	v := create(t, st, s)
	mutate(s)
	assertStored(t, st, want, v)
}

// mutate changes every part of s a store could share with its own state.
func mutate(s *store.Secret) {
	s.Current.Value = "mutated-current-value"
	s.Current.Meta["env"] = "mutated"
	s.Previous.ExpiresAt = s.Previous.ExpiresAt.Add(1)
	s.Next = nil
	s.Retired[0].Meta["reason"] = "mutated"
	s.Retired[1].ID = "mutated"
	s.Retired = append(s.Retired[:1], s.Retired[2:]...)
	s.Rotation.Step = store.StepFinish
	s.Rotation.Intent.ID = "mutated"
	s.Revoked[0].ID = "mutated"
	s.Orphans[0].Check = "mutated"
}

func testCaseSensitive(t *testing.T, st store.Store) {
	lower, upper := sparseSecret("api-key"), fullSecret("API-KEY")
	vl := create(t, st, lower)
	vu := create(t, st, upper)
	assertStored(t, st, lower, vl)
	assertStored(t, st, upper, vu)
}

// longestNames are names of the greatest length store.ValidateName
// accepts, in the forms that cost a store most room: all upper case
// (which a case-preserving encoding may double), all lower case, and a
// mix of every character class.
func longestNames() []string {
	mixed := strings.Repeat("Ab-9_.", 22)[:store.MaxNameLen]
	return []string{strings.Repeat("K", store.MaxNameLen), strings.Repeat("k", store.MaxNameLen), mixed}
}

// testLongestNames: every name ValidateName accepts is storable: created,
// loaded, saved again and listed.
func testLongestNames(t *testing.T, st store.Store) {
	names := longestNames()
	for _, name := range names {
		if err := store.ValidateName(name); err != nil {
			t.Fatalf("the suite's longest name is not valid: %v", err)
		}
		s := fullSecret(name)
		v := create(t, st, s)
		assertStored(t, st, s, v)
		s2 := sparseSecret(name)
		v2 := save(t, st, s2, v)
		assertStored(t, st, s2, v2)
	}
	if l, ok := st.(store.Lister); ok {
		got, err := l.List(t.Context())
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if want := slices.Sorted(slices.Values(names)); !slices.Equal(got, want) {
			t.Fatalf("List = %q, want the %d longest names", got, len(want))
		}
	}
}

func testList(t *testing.T, st store.Store) {
	l, ok := st.(store.Lister)
	if !ok {
		t.Skipf("%T does not implement store.Lister", st)
	}
	ctx := t.Context()
	names, err := l.List(ctx)
	if err != nil {
		t.Fatalf("List of a new store: %v", err)
	}
	if len(names) != 0 {
		t.Fatalf("List of a new store = %q, want none", names)
	}

	created := []string{"b-key", "a.key", "A_key", "a-key", "z9", "a"}
	versions := map[string]store.Version{}
	for _, name := range created {
		versions[name] = create(t, st, sparseSecret(name))
	}
	// A second version must not list the secret twice.
	save(t, st, sparseSecret("z9"), versions["z9"])

	names, err = l.List(ctx)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if want := slices.Sorted(slices.Values(created)); !slices.Equal(names, want) {
		t.Fatalf("List = %q, want %q", names, want)
	}
}

func testRejectsInvalid(t *testing.T, st store.Store) {
	ctx := t.Context()
	existing := fullSecret("existing")
	v := create(t, st, existing)

	tests := []struct {
		name     string
		secret   func() *store.Secret
		expected store.Version
	}{
		{
			name:     "empty value on create",
			secret:   func() *store.Secret { s := fullSecret("fresh"); s.Current.Value = ""; return s },
			expected: store.NoVersion,
		},
		{
			name:     "empty pending value on update",
			secret:   func() *store.Secret { s := existing.Clone(); s.Pending.Value = ""; return s },
			expected: v,
		},
		{
			name:     "empty name",
			secret:   func() *store.Secret { return sparseSecret("") },
			expected: store.NoVersion,
		},
		{
			name:     "path in name",
			secret:   func() *store.Secret { return sparseSecret("../escape") },
			expected: store.NoVersion,
		},
	}
	for _, tc := range tests {
		s := tc.secret()
		if s.Validate() == nil {
			t.Fatalf("%s: fixture is valid; the test is broken", tc.name)
		}
		_, err := st.Save(ctx, s, tc.expected)
		if err == nil {
			t.Errorf("%s: Save succeeded, want an error", tc.name)
		} else if errors.Is(err, store.ErrConflict) {
			t.Errorf("%s: err = %v, want a validation error, not a conflict", tc.name, err)
		}
	}

	assertStored(t, st, existing, v)
	if _, _, err := st.Load(ctx, "fresh"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a secret whose create was rejected: err = %v, want store.ErrNotFound", err)
	}
	if l, ok := st.(store.Lister); ok {
		names, err := l.List(ctx)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if !slices.Equal(names, []string{"existing"}) {
			t.Errorf("List = %q, want only %q: a rejected save wrote something", names, "existing")
		}
	}
}

// create saves s as a new secret and returns its version.
func create(t *testing.T, st store.Store, s *store.Secret) store.Version {
	t.Helper()
	return save(t, st, s, store.NoVersion)
}

// save saves s with expected and returns the new version, which must differ
// from expected.
func save(t *testing.T, st store.Store, s *store.Secret, expected store.Version) store.Version {
	t.Helper()
	v, err := st.Save(t.Context(), s, expected)
	if err != nil {
		t.Fatalf("Save %s (expected version %q): %v", s.Name, expected, err)
	}
	if v == expected || v == store.NoVersion {
		t.Fatalf("Save %s (expected version %q) returned version %q, want a new version", s.Name, expected, v)
	}
	return v
}

// assertStored loads want.Name and checks that it equals want at version v.
// It returns the loaded secret.
func assertStored(t *testing.T, st store.Store, want *store.Secret, v store.Version) *store.Secret {
	t.Helper()
	got, gotV, err := st.Load(t.Context(), want.Name)
	if err != nil {
		t.Fatalf("Load %s: %v", want.Name, err)
	}
	if gotV != v {
		t.Errorf("Load %s: version %q, want %q", want.Name, gotV, v)
	}
	for _, d := range diffSecret(got, want) {
		t.Errorf("Load %s: %s", want.Name, d)
	}
	return got
}
