package keyring

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"
)

// epoch is the start of every fake clock.
var epoch = time.Date(2026, 11, 25, 23, 32, 13, 0, time.UTC)

// clock is a fake clock tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: epoch} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

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

// key returns a new key with an unsalted id.
func (s *secrets) key() Key {
	v := s.value()
	return Key{Value: v, ID: unsaltedID(v)}
}

// checkNoValue fails the test if out contains any value s made.
func (s *secrets) checkNoValue(what, out string) {
	s.t.Helper()
	for _, v := range s.values {
		if strings.Contains(out, v) {
			s.t.Errorf("%s contains a key value: %s", what, out)
		}
	}
}

// checkErr fails the test if err's message contains any value s made.
func (s *secrets) checkErr(err error) {
	s.t.Helper()
	if err != nil {
		s.checkNoValue("error", err.Error())
	}
}

// fakeSource is a Source whose answer tests change, counting its calls.
type fakeSource struct {
	mu    sync.Mutex
	set   Set
	err   error
	loads int
}

func (f *fakeSource) Load(context.Context) (Set, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loads++
	return f.set.clone(), f.err
}

func (f *fakeSource) put(set Set, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set, f.err = set, err
}

func (f *fakeSource) loadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loads
}

// versionedSource is a fakeSource that also reports its version.
type versionedSource struct {
	fakeSource
	versions int
	verErr   error
}

func (v *versionedSource) Version(context.Context) (string, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.versions++
	return v.set.Version, v.verErr
}

// ptr returns a pointer to a copy of k.
func ptr(k Key) *Key { return &k }

// expiring returns k with an expiry.
func expiring(k Key, at time.Time) *Key {
	k.ExpiresAt = at
	return &k
}

// mustNew returns a keyring over src with the fake clock c.
func mustNew(t testing.TB, src Source, c *clock, opts ...Option) *Keyring {
	t.Helper()
	k, err := New(t.Context(), src, append([]Option{WithClock(c.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
