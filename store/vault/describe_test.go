package vault

import (
	"context"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// TestDescriptionsOfAnOperationGoInOnePatch: the versions a rotation
// writes are described when it ends, in one patch that carries a history
// line for each of them; until then (here a verify hook looks, with the
// delay longer than the test) the metadata still describes the secret as
// it was before the rotation.
func TestDescriptionsOfAnOperationGoInOnePatch(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	st.desc.after = time.Hour
	var patched []uint64
	st.desc.patched = func(_ string, v uint64) { patched = append(patched, v) }
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "held", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	_, before, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	var during store.Version
	sec.Verify = rotationtest.HookFunc(func(ctx context.Context, _ *store.Secret) error {
		_, during, err = st.Describe(ctx, sec.Name)
		return err
	})
	patched = nil
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	if during != before {
		t.Errorf("during the rotation the metadata described version %s, want %s (the one before it)", during, before)
	}
	_, after, err := st.Load(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := parseVersion(after); len(patched) != 1 || patched[0] != a {
		t.Errorf("patches of the rotation described versions %v, want one, of %s", patched, after)
	}
	if _, v, err := st.Describe(ctx, sec.Name); err != nil || v != after {
		t.Errorf("after the rotation Describe = %s, %v; want %s", v, err, after)
	}
	hist, err := st.History(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := parseVersion(before)
	for _, e := range hist {
		if n, _ := parseVersion(e.Version); n > b && e.WrittenBy == "" {
			t.Errorf("version %s of the rotation has no history line: %+v", e.Version, e)
		}
	}
}

// TestHeldDescriptionPatchedWhileAnOperationWaits: a rotation that waits
// (a verify hook) is described as in progress once the delay has passed,
// before it ends.
func TestHeldDescriptionPatchedWhileAnOperationWaits(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	st.desc.after = time.Millisecond
	patches := make(chan uint64, 16)
	st.desc.patched = func(_ string, v uint64) { patches <- v }
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "waits", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	sec.Verify = rotationtest.HookFunc(func(ctx context.Context, _ *store.Secret) error {
		ctx, cancel := context.WithTimeout(ctx, time.Minute) // fail rather than hang
		defer cancel()
		// Patches of the start and create may come first; the
		// promote's comes without anything else happening.
		for {
			select {
			case <-patches:
			case <-ctx.Done():
				t.Error("while verify waits, the metadata is never patched to describe promote")
				return ctx.Err()
			}
			desc, _, err := st.Describe(ctx, sec.Name)
			if err != nil {
				return err
			}
			if desc.Rotation != nil && desc.Rotation.Step == store.StepPromote {
				return nil
			}
		}
	})
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
}

// TestCloseFlushesHeldDescriptions: a version written during an operation
// is described by Close at the latest, as another store reading the
// metadata sees.
func TestCloseFlushesHeldDescriptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	st := rootStore(t)
	st.desc.after = time.Hour
	sec := sampleSecret("closing")
	sec.Rotation = &store.Rotation{ID: "r1", Kind: store.OpRotate, Step: store.StepCreate, Holder: "h1", LeaseExpiresAt: time.Now().Add(time.Minute)}
	v := mustSave(t, st, sec, store.NoVersion)
	other := rootStore(t)
	other.prefix = st.prefix
	if _, _, err := other.Describe(ctx, sec.Name); err == nil {
		t.Fatal("the held description was patched before Close")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	desc, got, err := other.Describe(ctx, sec.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got != v || desc.Rotation == nil || desc.Rotation.Holder != "h1" {
		t.Errorf("after Close the metadata describes version %s with rotation %+v, want %s held by h1", got, desc.Rotation, v)
	}
}
