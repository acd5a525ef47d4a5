package storesource_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/keyring/keyid"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
	"github.com/rotor-dev/rotor/storesource"
)

// epoch is the time every test starts at.
var epoch = time.Date(2026, 11, 25, 23, 32, 13, 0, time.UTC)

// storeSalt is the salt the keys these tests store were given ids with.
var storeSalt = []byte("store salt")

// secrets makes key values for a test and checks that none of them shows
// up where it must not.
type secrets struct {
	t      testing.TB
	values []string
}

func newSecrets(t testing.TB) *secrets { return &secrets{t: t} }

// value returns a new random key value that looks like a Clerk key.
func (s *secrets) value() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	v := "sk_test_" + hex.EncodeToString(b)
	s.values = append(s.values, v)
	return v
}

// key returns a new stored key with rotor's id.
func (s *secrets) key() *store.Key {
	v := s.value()
	return &store.Key{Value: v, ID: keyid.Of(storeSalt, v), CreatedAt: epoch}
}

// checkErr fails the test if err's message contains any value s made.
func (s *secrets) checkErr(err error) {
	s.t.Helper()
	if err == nil {
		return
	}
	for _, v := range s.values {
		if strings.Contains(err.Error(), v) {
			s.t.Errorf("error contains a key value: %v", err)
		}
	}
}

func expiring(k *store.Key, at time.Time) *store.Key {
	k = k.Clone()
	k.ExpiresAt = at
	return k
}

// unsaltedID is the id a keyring gives a key that has none.
func unsaltedID(value string) string {
	sum := sha256.Sum256([]byte(value))
	return hex.EncodeToString(sum[:])[:keyid.Len]
}

func TestSetOf(t *testing.T) {
	sec := newSecrets(t)
	cur, prev, next, pending, retired := sec.key(), sec.key(), sec.key(), sec.key(), sec.key()
	grace := epoch.Add(24 * time.Hour)
	tests := []struct {
		name     string
		reason   string
		secret   store.Secret
		at       time.Time
		wantPrev *store.Key
		wantNext *store.Key
	}{
		{name: "grace period", reason: "current, previous and next with their ids and expiry; never pending or retired",
			secret: store.Secret{Name: "s", Current: cur, Previous: expiring(prev, grace), Next: next, Pending: pending, Retired: []store.Key{*retired}},
			at:     epoch, wantPrev: expiring(prev, grace), wantNext: next},
		{name: "previous expired", reason: "a key past its grace period goes to no consumer",
			secret: store.Secret{Name: "s", Current: cur, Previous: expiring(prev, grace)},
			at:     grace},
		{name: "previous just before expiry", reason: "a key is valid strictly before its ExpiresAt",
			secret: store.Secret{Name: "s", Current: cur, Previous: expiring(prev, grace)},
			at:     grace.Add(-time.Nanosecond), wantPrev: expiring(prev, grace)},
		{name: "previous without expiry", reason: "AWS labels carry none: AWSPREVIOUS is valid while it holds the label",
			secret: store.Secret{Name: "s", Current: cur, Previous: prev},
			at:     grace.Add(1000 * time.Hour), wantPrev: prev},
		{name: "next expired", reason: "the same rule for a staged key with an issuer-side expiry",
			secret: store.Secret{Name: "s", Current: cur, Next: expiring(next, grace)},
			at:     grace},
		{name: "current with an expiry", reason: "the current key is valid for as long as it is current",
			secret: store.Secret{Name: "s", Current: expiring(cur, epoch)},
			at:     grace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := storesource.SetOf(&tt.secret, "7", tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if set.Current.Value != tt.secret.Current.Value || set.Current.ID != tt.secret.Current.ID || set.Version != "7" {
				t.Errorf("current %v at %q, want %s at 7 (%s)", set.Current, set.Version, tt.secret.Current.ID, tt.reason)
			}
			for _, c := range []struct {
				slot string
				got  *keyring.Key
				want *store.Key
			}{{"previous", set.Previous, tt.wantPrev}, {"next", set.Next, tt.wantNext}} {
				switch {
				case c.want == nil && c.got != nil:
					t.Errorf("%s = %v, want none (%s)", c.slot, c.got, tt.reason)
				case c.want != nil && (c.got == nil || c.got.Value != c.want.Value || c.got.ID != c.want.ID || !c.got.ExpiresAt.Equal(c.want.ExpiresAt)):
					t.Errorf("%s = %v, want %s until %v (%s)", c.slot, c.got, c.want.ID, c.want.ExpiresAt, tt.reason)
				}
			}
			for _, k := range []*keyring.Key{&set.Current, set.Previous, set.Next} {
				if k != nil && (k.Value == pending.Value || k.Value == retired.Value) {
					t.Errorf("a pending or retired key is in the set")
				}
			}
		})
	}
}

func TestSetOfWithoutCurrent(t *testing.T) {
	sec := newSecrets(t)
	_, err := storesource.SetOf(&store.Secret{Name: "staged", Next: sec.key()}, "1", epoch)
	if !errors.Is(err, keyring.ErrNoCurrentKey) || !strings.Contains(err.Error(), "staged") {
		t.Fatalf("SetOf of a secret without a current key: %v, want ErrNoCurrentKey naming the secret", err)
	}
	sec.checkErr(err)
}

// rotate saves a new current key in st, moving the old one to previous
// with an expiry, the way rotor's promote step does.
func rotate(t *testing.T, st store.Store, name string, k *store.Key, expires time.Time) {
	t.Helper()
	ctx := t.Context()
	s, ver, err := st.Load(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		s, ver = &store.Secret{Name: name}, store.NoVersion
	} else if err != nil {
		t.Fatal(err)
	}
	if s.Current != nil {
		s.Previous = expiring(s.Current, expires)
	}
	s.Current = k
	if _, err := st.Save(ctx, s, ver); err != nil {
		t.Fatal(err)
	}
}

// testSource follows a secret through a rotation and a staged key, and
// until its previous key expires, with a keyring over New.
func testSource(t *testing.T, st store.Store) {
	sec := newSecrets(t)
	ctx := t.Context()
	var mu sync.Mutex
	now := epoch
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	a, b := sec.key(), sec.key()
	rotate(t, st, "demo", a, time.Time{})

	kr, err := keyring.New(ctx, storesource.New(st, "demo", storesource.WithClock(clock)), keyring.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	_, ver, err := st.Load(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if set := kr.Set(); set.Current.Value != a.Value || set.Current.ID != a.ID || set.Previous != nil || set.Version != string(ver) {
		t.Errorf("first set = %v, want current %s at version %s", set.LogValue(), a.ID, ver)
	}

	grace := epoch.Add(24 * time.Hour)
	rotate(t, st, "demo", b, grace)
	s, ver, err := st.Load(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	next := sec.value()
	s.Next = &store.Key{Value: next} // no id: the keyring derives one
	s.Pending = sec.key()
	if ver, err = st.Save(ctx, s, ver); err != nil {
		t.Fatal(err)
	}
	if err := kr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	set := kr.Set()
	switch {
	case set.Current.Value != b.Value:
		t.Errorf("current = %v, want the rotated key", set.Current)
	case set.Previous == nil || set.Previous.Value != a.Value || !set.Previous.ExpiresAt.Equal(grace):
		t.Errorf("previous = %v, want the old key until %v", set.Previous, grace)
	case set.Next == nil || set.Next.Value != next || set.Next.ID != unsaltedID(next):
		t.Errorf("next = %v, want the staged key with an unsalted id", set.Next)
	case set.Version != string(ver):
		t.Errorf("version = %q, want %q", set.Version, ver)
	}
	if h := kr.Health(); h.KeyIDs.Current == s.Pending.ID || h.KeyIDs.Next == s.Pending.ID {
		t.Errorf("the pending key leaked into the set")
	}

	// Past the grace period the old key is no longer handed out.
	mu.Lock()
	now = grace
	mu.Unlock()
	if err := kr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if p := kr.Set().Previous; p != nil {
		t.Errorf("previous %v still in the set after it expired", p)
	}

	// A missing secret is an error that says so.
	_, err = storesource.New(st, "missing").Load(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a missing secret: %v, want ErrNotFound", err)
	}
	sec.checkErr(err)
}

func TestSourceMemstore(t *testing.T) { testSource(t, memstore.New()) }

func TestSourceFileStore(t *testing.T) {
	root := t.TempDir()
	identity := filepath.Join(root, "identity.txt")
	if err := file.GenerateIdentity(identity); err != nil {
		t.Fatal(err)
	}
	st, err := file.New(filepath.Join(root, "store"), identity)
	if err != nil {
		t.Fatal(err)
	}
	testSource(t, st)
}

func TestSourceWithoutCurrent(t *testing.T) {
	sec := newSecrets(t)
	st := memstore.New()
	if _, err := st.Save(t.Context(), &store.Secret{Name: "staged", Next: sec.key()}, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	_, err := keyring.New(t.Context(), storesource.New(st, "staged"))
	if !errors.Is(err, keyring.ErrNoCurrentKey) {
		t.Errorf("New over a secret without a current key: %v, want ErrNoCurrentKey", err)
	}
	sec.checkErr(err)
}

func TestWithSalt(t *testing.T) {
	sec := newSecrets(t)
	st := memstore.New()
	v := sec.value()
	if _, err := st.Save(t.Context(), &store.Secret{Name: "s", Current: &store.Key{Value: v}}, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	salt := []byte("deployment salt")
	src := storesource.New(st, "s", storesource.WithSalt(salt))
	salt[0] = 'X' // the source keeps its own copy
	set, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := keyid.Of([]byte("deployment salt"), v); set.Current.ID != want {
		t.Errorf("id of a key stored without one = %s, want rotor's salted id %s", set.Current.ID, want)
	}
}

// versionStore is a memstore that reports versions cheaply and counts
// loads.
type versionStore struct {
	*memstore.Store
	mu       sync.Mutex
	loads    int
	versions int
}

var _ storesource.Versioner = (*versionStore)(nil)

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

func TestSourceVersioner(t *testing.T) {
	sec := newSecrets(t)
	st := &versionStore{Store: memstore.New()}
	rotate(t, st.Store, "demo", sec.key(), time.Time{})
	src := storesource.New(st, "demo")
	if _, ok := src.(keyring.Versioner); !ok {
		t.Fatal("a source over a Versioner is not a keyring.Versioner")
	}
	if _, ok := storesource.New(memstore.New(), "demo").(keyring.Versioner); ok {
		t.Error("a source over a plain store claims to be a keyring.Versioner: every poll would load twice")
	}
	kr, err := keyring.New(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if err := kr.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if st.loads != 1 || st.versions != 5 {
		t.Errorf("5 polls of an unchanged secret: %d loads, %d version reads; want 1 and 5", st.loads, st.versions)
	}
	b := sec.key()
	rotate(t, st.Store, "demo", b, time.Now().Add(time.Hour))
	if err := kr.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if kr.Current().Value != b.Value || st.loads != 2 {
		t.Errorf("after a rotation: current %v after %d loads", kr.Current(), st.loads)
	}
}
