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

func TestEnvSource(t *testing.T) {
	sec := newSecrets(t)
	p, s, plain := sec.value(), sec.value(), sec.value()
	salt := []byte("deployment salt")
	tests := []struct {
		name     string
		reason   string
		env      map[string]string
		opts     []SourceOption
		wantCur  string
		wantPrev string // "" for none
		wantErr  error
	}{
		{name: "primary and secondary", reason: "what rotor run sets during a grace period",
			env: map[string]string{"KEY_PRIMARY": p, "KEY_SECONDARY": s}, wantCur: p, wantPrev: s},
		{name: "plain name only", reason: "apps started without rotor run",
			env: map[string]string{"KEY": plain}, wantCur: plain},
		{name: "primary wins over plain", reason: "rotor run sets both",
			env: map[string]string{"KEY": plain, "KEY_PRIMARY": p}, wantCur: p},
		{name: "plain with secondary", reason: "the secondary does not depend on _PRIMARY",
			env: map[string]string{"KEY": plain, "KEY_SECONDARY": s}, wantCur: plain, wantPrev: s},
		{name: "empty primary falls back", reason: "an empty variable counts as unset",
			env: map[string]string{"KEY_PRIMARY": "  ", "KEY": plain}, wantCur: plain},
		{name: "white space trimmed", reason: "values read from files end in a newline",
			env: map[string]string{"KEY_PRIMARY": " " + p + "\n", "KEY_SECONDARY": s + "\n"}, wantCur: p, wantPrev: s},
		{name: "secondary equal to primary", reason: "a fallback to the same key is pointless",
			env: map[string]string{"KEY_PRIMARY": p, "KEY_SECONDARY": p}, wantCur: p},
		{name: "salted ids", reason: "ids must match what rotor prints",
			env: map[string]string{"KEY_PRIMARY": p, "KEY_SECONDARY": s}, opts: []SourceOption{WithSalt(salt)}, wantCur: p, wantPrev: s},
		{name: "nothing set", reason: "no current key is an error",
			env: map[string]string{"KEY_SECONDARY": s}, wantErr: ErrNoCurrentKey},
		{name: "other name", reason: "only NAME's variables count",
			env: map[string]string{"OTHER_PRIMARY": p}, wantErr: ErrNoCurrentKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := unsaltedID
			if tt.opts != nil {
				id = func(v string) string { return keyid.Of(salt, v) }
			}
			src := EnvSource("KEY", func(k string) string { return tt.env[k] }, tt.opts...)
			set, err := src.Load(t.Context())
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Load() error = %v, want %v (%s)", err, tt.wantErr, tt.reason)
				}
				sec.checkErr(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.Current.Value != tt.wantCur || set.Current.ID != id(tt.wantCur) {
				t.Errorf("current = %v, want %v (%s)", set.Current, id(tt.wantCur), tt.reason)
			}
			switch {
			case tt.wantPrev == "" && set.Previous != nil:
				t.Errorf("previous = %v, want none (%s)", set.Previous, tt.reason)
			case tt.wantPrev != "" && (set.Previous == nil || set.Previous.Value != tt.wantPrev || set.Previous.ID != id(tt.wantPrev)):
				t.Errorf("previous = %v, want %v (%s)", set.Previous, id(tt.wantPrev), tt.reason)
			}
			if set.Previous != nil && !set.Previous.ExpiresAt.IsZero() {
				t.Errorf("previous from the environment has an expiry")
			}
		})
	}
}

func TestEnvSourceDefaultsToOSEnviron(t *testing.T) {
	sec := newSecrets(t)
	v := sec.value()
	t.Setenv("ROTOR_KEYRING_TEST_KEY", v)
	k, err := New(t.Context(), EnvSource("ROTOR_KEYRING_TEST_KEY", nil))
	if err != nil {
		t.Fatal(err)
	}
	if k.Current().Value != v {
		t.Errorf("EnvSource with nil getenv did not read the environment")
	}
}

func TestWithSaltCopiesTheSalt(t *testing.T) {
	sec := newSecrets(t)
	v := sec.value()
	salt := []byte("salt")
	src := EnvSource("K", func(k string) string {
		if k == "K" {
			return v
		}
		return ""
	}, WithSalt(salt))
	salt[0] = 'X'
	set, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if set.Current.ID != keyid.Of([]byte("salt"), v) {
		t.Errorf("changing the caller's salt changed the ids")
	}
}

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

func TestEnvSourceUsesRotorKeyIDs(t *testing.T) {
	env := map[string]string{
		"APP_KEY_PRIMARY": "primary-value-123", "APP_KEY_SECONDARY": "secondary-value-456",
		"APP_KEY_KEY_ID": "1111111111111111", "APP_KEY_SECONDARY_KEY_ID": "2222222222222222",
	}
	set, err := EnvSource("APP_KEY", func(k string) string { return env[k] }).Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if set.Current.ID != "1111111111111111" || set.Previous == nil || set.Previous.ID != "2222222222222222" {
		t.Fatalf("ids = %s / %v, want the ones rotor run passed", set.Current.ID, set.Previous)
	}
}
