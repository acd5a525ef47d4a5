package rotation_test

import (
	"context"
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
		prov         func() provider.Provider
		stage        bool
		loads, saves int64
	}{
		// start, intent, create, test, promote, reload, verify, finish.
		{"minted", func() provider.Provider { return rotationtest.NewProvider() }, false, 1, 8},
		// start, prepare (the value saved before Apply), create, test,
		// promote, reload, verify, finish.
		{"prepared", func() provider.Provider { return rotationtest.NewIssuer(2) }, false, 1, 8},
		// start, create, test, promote, reload, verify, finish.
		{"staged", func() provider.Provider { return rotationtest.NewProvider() }, true, 1, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := &countingStore{Store: memstore.New()}
			eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
			sec := rotation.Secret{Name: "app", Provider: tc.prov(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute,
				Reload: rotationtest.HookFunc(func(context.Context, *store.Secret) error { return nil }),
				Verify: rotationtest.HookFunc(func(context.Context, *store.Secret) error { return nil })}
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
