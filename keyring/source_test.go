package keyring

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/keyid"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
)

// rotate saves a new current key in st, moving the old one to previous
// with an expiry, the way rotor's promote step does.
func rotate(t *testing.T, st store.Store, name string, value string, expires time.Time) {
	t.Helper()
	ctx := t.Context()
	s, ver, err := st.Load(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s, ver = &store.Secret{Name: name}, store.NoVersion
	} else if err != nil {
		t.Fatal(err)
	}
	if s.Current != nil {
		s.Previous = s.Current
		s.Previous.ExpiresAt = expires
	}
	s.Current = &store.Key{Value: value, ID: keyid.Of([]byte("store salt"), value), CreatedAt: epoch}
	if _, err := st.Save(ctx, s, ver); err != nil {
		t.Fatal(err)
	}
}

func testStoreSource(t *testing.T, st store.Store) {
	sec := newSecrets(t)
	ctx := t.Context()
	c := newClock()
	a, b, next, pending := sec.value(), sec.value(), sec.value(), sec.value()
	rotate(t, st, "demo", a, time.Time{})

	k := mustNew(t, StoreSource(st, "demo"), c)
	_, ver, err := st.Load(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	set := k.Set()
	if set.Current.Value != a || set.Current.ID != keyid.Of([]byte("store salt"), a) || set.Previous != nil || set.Version != string(ver) {
		t.Errorf("first set = %v, want current %s at version %s", set.LogValue(), keyid.Of([]byte("store salt"), a), ver)
	}

	grace := epoch.Add(24 * time.Hour)
	rotate(t, st, "demo", b, grace)
	s, _, err := st.Load(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	s.Next = &store.Key{Value: next} // no id: the source derives one
	s.Pending = &store.Key{Value: pending, ID: "pendingid"}
	_, ver, _ = st.Load(ctx, "demo")
	ver, err = st.Save(ctx, s, ver)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	set = k.Set()
	switch {
	case set.Current.Value != b:
		t.Errorf("current = %v, want the rotated key", set.Current)
	case set.Previous == nil || set.Previous.Value != a || !set.Previous.ExpiresAt.Equal(grace):
		t.Errorf("previous = %v, want the old key until %v", set.Previous, grace)
	case set.Next == nil || set.Next.Value != next || set.Next.ID != unsaltedID(next):
		t.Errorf("next = %v, want the staged key with an unsalted id", set.Next)
	case set.Version != string(ver):
		t.Errorf("version = %q, want %q", set.Version, ver)
	}
	h := k.Health()
	sec.checkNoValue("health", h.KeyIDs.Current+h.KeyIDs.Previous+h.KeyIDs.Next+h.LastError)
	if h.KeyIDs.Next == "pendingid" || h.KeyIDs.Current == "pendingid" {
		t.Errorf("the pending key leaked into the set")
	}

	// A missing secret is an error that says so.
	missing := StoreSource(st, "missing")
	_, err = missing.Load(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a missing secret: %v, want ErrNotFound", err)
	}
	sec.checkErr(err)
}

func TestStoreSourceMemstore(t *testing.T) { testStoreSource(t, memstore.New()) }

func TestStoreSourceFileStore(t *testing.T) {
	root := t.TempDir()
	identity := filepath.Join(root, "identity.txt")
	if err := file.GenerateIdentity(identity); err != nil {
		t.Fatal(err)
	}
	st, err := file.New(filepath.Join(root, "store"), identity)
	if err != nil {
		t.Fatal(err)
	}
	testStoreSource(t, st)
}

func TestStoreSourceWithoutCurrent(t *testing.T) {
	sec := newSecrets(t)
	st := memstore.New()
	if _, err := st.Save(t.Context(), &store.Secret{Name: "staged", Next: &store.Key{Value: sec.value()}}, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	_, err := New(t.Context(), StoreSource(st, "staged"))
	if !errors.Is(err, ErrNoCurrentKey) {
		t.Errorf("New over a secret without a current key: %v, want ErrNoCurrentKey", err)
	}
	sec.checkErr(err)
}

// versionStore is a memstore that reports versions cheaply and counts
// loads.
type versionStore struct {
	*memstore.Store
	mu       sync.Mutex
	loads    int
	versions int
}

var _ StoreVersioner = (*versionStore)(nil)

func (v *versionStore) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	v.mu.Lock()
	v.loads++
	v.mu.Unlock()
	return v.Store.Load(ctx, name)
}

func (v *versionStore) Version(ctx context.Context, name string) (store.Version, error) {
	v.mu.Lock()
	v.versions++
	v.mu.Unlock()
	_, ver, err := v.Store.Load(ctx, name)
	return ver, err
}

func TestStoreSourceVersioner(t *testing.T) {
	sec := newSecrets(t)
	st := &versionStore{Store: memstore.New()}
	rotate(t, st.Store, "demo", sec.value(), time.Time{})
	src := StoreSource(st, "demo")
	if _, ok := src.(Versioner); !ok {
		t.Fatal("StoreSource over a StoreVersioner is not a Versioner")
	}
	if _, ok := StoreSource(memstore.New(), "demo").(Versioner); ok {
		t.Error("StoreSource over a plain store claims to be a Versioner: every poll would load twice")
	}
	k := mustNew(t, src, newClock())
	for range 5 {
		if err := k.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if st.loads != 1 || st.versions != 5 {
		t.Errorf("5 polls of an unchanged secret: %d loads, %d version reads; want 1 and 5", st.loads, st.versions)
	}
	b := sec.value()
	rotate(t, st.Store, "demo", b, epoch.Add(time.Hour))
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if k.Current().Value != b || st.loads != 2 {
		t.Errorf("after a rotation: current %v after %d loads", k.Current(), st.loads)
	}
}

func TestStaticSourceCopies(t *testing.T) {
	sec := newSecrets(t)
	set := Set{Current: sec.key(), Previous: ptr(sec.key())}
	src := StaticSource(set)
	set.Previous.Value = "changed"
	got, _ := src.Load(t.Context())
	got.Previous.ID = "changed too"
	again, _ := src.Load(t.Context())
	if again.Previous.Value == "changed" || again.Previous.ID == "changed too" {
		t.Errorf("StaticSource shares its set with callers")
	}
}
