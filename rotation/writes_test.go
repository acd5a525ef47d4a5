package rotation_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// countingStore counts the loads and saves that reach a store.
type countingStore struct {
	store.Store
	loads, saves atomic.Int64
}

func (c *countingStore) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	c.loads.Add(1)
	return c.Store.Load(ctx, name)
}

func (c *countingStore) Save(ctx context.Context, s *store.Secret, v store.Version) (store.Version, error) {
	c.saves.Add(1)
	return c.Store.Save(ctx, s, v)
}

// TestStoreWritesPerRotation pins how many times one rotation loads and
// saves the secret, per kind of pending key, so that a change that adds
// writes (a KV version and a metadata patch each on Vault, an encrypted
// file rewrite on the file store) shows up here. Counts, not timings: the
// cost they stand for is in BENCHMARKS.md.
func TestStoreWritesPerRotation(t *testing.T) {
	tests := []struct {
		name string
		// prov is the provider; stage, when set, stages a key first.
		prov  func() provider.Provider
		stage bool
		// reload, verify: the secret has such hooks.
		reload, verify bool
		loads, saves   int64
	}{
		// start with the mint intent, create, promote (test's record
		// with it), reload, finish (verify's record with it).
		{"minted", func() provider.Provider { return rotationtest.NewProvider() }, false, true, true, 1, 5},
		// start, prepare (the value saved before Apply), create, promote,
		// reload, finish.
		{"prepared", func() provider.Provider { return rotationtest.NewIssuer(2) }, false, true, true, 1, 6},
		// start, create, promote, reload, finish.
		{"staged", func() provider.Provider { return rotationtest.NewProvider() }, true, true, true, 1, 5},
		// start, create, promote, finish (reload's and verify's records
		// with it): promote is saved before the verify hook looks.
		{"minted, verify hook only", func() provider.Provider { return rotationtest.NewProvider() }, false, false, true, 1, 4},
		// start, create, promote, reload, finish: the reload hook acts
		// after promote is saved, and reload is saved before verify.
		{"minted, reload hook only", func() provider.Provider { return rotationtest.NewProvider() }, false, true, false, 1, 5},
		// start, create, finish (test, promote, reload and verify saved
		// with it): nothing outside the store happens after create.
		{"minted, no hooks", func() provider.Provider { return rotationtest.NewProvider() }, false, false, false, 1, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := &countingStore{Store: memstore.New()}
			eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
			sec := rotation.Secret{Name: "app", Provider: tc.prov(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
			if tc.reload {
				sec.Reload = rotationtest.HookFunc(func(context.Context, *store.Secret) error { return nil })
			}
			if tc.verify {
				sec.Verify = rotationtest.HookFunc(func(context.Context, *store.Secret) error { return nil })
			}
			if _, err := eng.Rotate(ctx, sec); err != nil {
				t.Fatal(err)
			}
			if tc.stage {
				if _, err := eng.Stage(ctx, sec, "x-staged-value", nil); err != nil {
					t.Fatal(err)
				}
			}
			st.loads.Store(0)
			st.saves.Store(0)
			res, err := eng.Rotate(ctx, sec)
			if err != nil {
				t.Fatal(err)
			}
			if res.Previous == "" || res.Current == res.Previous {
				t.Fatalf("rotation = %+v, want a new current over the old one", res)
			}
			if got := st.saves.Load(); got != tc.saves {
				t.Errorf("one rotation saved %d times, want %d", got, tc.saves)
			}
			if got := st.loads.Load(); got != tc.loads {
				t.Errorf("one rotation loaded %d times, want %d", got, tc.loads)
			}
		})
	}
}

// plainProvider hides every optional interface of the provider it wraps:
// it can neither recover a mint nor mint idempotently.
type plainProvider struct{ provider.Provider }

// TestMergedStepsKeepTheirRecords: with test saved together with promote
// and verify together with finish, the audit log still has a record of
// every step, in step order, the mint intent saved with the start is not
// mistaken for an interrupted run's (no possible orphan is reported even
// for a provider that cannot reconcile), and the provider is asked to mint
// exactly once.
func TestMergedStepsKeepTheirRecords(t *testing.T) {
	ctx := context.Background()
	rec := &rotationtest.Recorder{}
	st := memstore.New()
	inner := rotationtest.NewProvider()
	eng := &rotation.Engine{Store: st, Audit: rec, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "app", Provider: plainProvider{inner}, Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	for range 2 {
		if _, err := eng.Rotate(ctx, sec); err != nil {
			t.Fatal(err)
		}
	}
	s, _, err := st.Load(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Orphans) != 0 {
		t.Errorf("orphans after two clean rotations: %+v", s.Orphans)
	}
	if n := len(inner.Minted()); n != 2 {
		t.Errorf("the provider minted %d keys for two rotations, want 2", n)
	}
	var got []string
	for _, ev := range rec.Events() {
		got = append(got, ev.Action+" "+ev.Status)
	}
	one := []string{"rotate.start started", "rotate.create succeeded", "rotate.test succeeded", "rotate.promote succeeded",
		"rotate.reload succeeded", "rotate.verify succeeded", "rotate.finish succeeded"}
	if want := append(slices.Clone(one), one...); !slices.Equal(got, want) {
		t.Errorf("audit records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRotateLoadedUsesTheLoad: a caller that loaded the secret (to see
// whether it is due) hands the load to RotateLoaded, which reads the
// store no more; a load gone stale since (another rotation ran in
// between) is refused by the store's compare-and-swap and loaded again,
// so the rotation still goes over the latest state.
func TestRotateLoadedUsesTheLoad(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{Store: memstore.New()}
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "app", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}

	s, ver, err := eng.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	loaded := store.KeyID(s.Current)
	st.loads.Store(0)
	res, err := eng.RotateLoaded(ctx, sec, s, ver)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.loads.Load(); got != 0 {
		t.Errorf("RotateLoaded over a fresh load loaded %d times, want 0", got)
	}
	if res.Previous != loaded {
		t.Errorf("rotation replaced %s, want the loaded current %s", res.Previous, loaded)
	}

	stale, staleVer, err := eng.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	between, err := eng.Rotate(ctx, sec)
	if err != nil {
		t.Fatal(err)
	}
	st.loads.Store(0)
	res, err = eng.RotateLoaded(ctx, sec, stale, staleVer)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.loads.Load(); got != 1 {
		t.Errorf("RotateLoaded over a stale load loaded %d times, want 1 (after the refused save)", got)
	}
	if res.Previous != between.Current {
		t.Errorf("rotation over a stale load replaced %s, want %s, the current saved since the load", res.Previous, between.Current)
	}
}

// TestRotateDueChecksAgainAfterALostRace: two rotators load a due secret;
// one rotates it; the other's RotateDue, refused by the store over its
// stale load, loads again, finds the secret no longer due and rotates
// nothing (ErrNotDue), where a plain rotation would rotate it twice.
func TestRotateDueChecksAgainAfterALostRace(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	st := memstore.New()
	sec := rotation.Secret{Name: "app", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	a := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:a", Holder: "a", Now: now}
	b := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:b", Holder: "b", Now: now}
	if _, err := a.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * time.Hour)
	s, ver, err := b.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Due(s, sec, clock) {
		t.Fatal("setup: the secret is not due")
	}
	won, err := a.Rotate(ctx, sec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RotateDue(ctx, sec, s, ver, clock); !errors.Is(err, rotation.ErrNotDue) {
		t.Fatalf("RotateDue over a load another rotation made stale = %v, want ErrNotDue", err)
	}
	after, _, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got := store.KeyID(after.Current); got != won.Current {
		t.Errorf("current is %s, want %s: the secret was rotated again", got, won.Current)
	}
	s, ver, err = b.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.RotateDue(ctx, sec, s, ver, clock); !errors.Is(err, rotation.ErrNotDue) {
		t.Errorf("RotateDue of a secret not due = %v, want ErrNotDue", err)
	}
}
