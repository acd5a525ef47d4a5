package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"sync"
	"testing"
	"time"
)

// benchMsg is a typical webhook payload size.
var benchMsg = make([]byte, 1024)

func benchKeyring(b *testing.B) *Keyring {
	b.Helper()
	sec := newSecrets(b)
	set := Set{Current: sec.key(), Previous: expiring(sec.key(), epoch.Add(time.Hour)), Next: ptr(sec.key())}
	return mustNew(b, StaticSource(set), newClock())
}

func BenchmarkCurrent(b *testing.B) {
	k := benchKeyring(b)
	var sink Key
	for b.Loop() {
		sink = k.Current()
	}
	_ = sink
}

func BenchmarkCurrentParallel(b *testing.B) {
	k := benchKeyring(b)
	b.RunParallel(func(pb *testing.PB) {
		var sink Key
		for pb.Next() {
			sink = k.Current()
		}
		_ = sink
	})
}

// rwKeyring is the obvious alternative to an atomic pointer, for comparison.
type rwKeyring struct {
	mu  sync.RWMutex
	key Key
}

func (r *rwKeyring) current() Key {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.key
}

func BenchmarkBaselineRWMutexCurrent(b *testing.B) {
	r := &rwKeyring{key: benchKeyring(b).Current()}
	var sink Key
	for b.Loop() {
		sink = r.current()
	}
	_ = sink
}

func BenchmarkBaselineRWMutexCurrentParallel(b *testing.B) {
	r := &rwKeyring{key: benchKeyring(b).Current()}
	b.RunParallel(func(pb *testing.PB) {
		var sink Key
		for pb.Next() {
			sink = r.current()
		}
		_ = sink
	})
}

// BenchmarkBaselineHMACSingleKey is the cost of checking a MAC under one
// key the straightforward way: the floor Sign and Verify are measured
// against.
func BenchmarkBaselineHMACSingleKey(b *testing.B) {
	key := []byte(benchKeyring(b).Current().Value)
	want := macOf(string(key), benchMsg)
	b.SetBytes(int64(len(benchMsg)))
	for b.Loop() {
		m := hmac.New(sha256.New, key)
		m.Write(benchMsg)
		if !hmac.Equal(m.Sum(nil), want) {
			b.Fatal("mismatch")
		}
	}
}

func BenchmarkSign(b *testing.B) {
	k := benchKeyring(b)
	b.SetBytes(int64(len(benchMsg)))
	for b.Loop() {
		_ = k.Sign(benchMsg)
	}
}

// BenchmarkVerifyWithKeyID verifies a signature made with the previous key
// (the worst case for the lookup): one MAC, whatever the number of keys.
func BenchmarkVerifyWithKeyID(b *testing.B) {
	k := benchKeyring(b)
	prev := mustNew(b, StaticSource(Set{Current: *k.Set().Previous}), newClock())
	sig := prev.Sign(benchMsg)
	b.SetBytes(int64(len(benchMsg)))
	for b.Loop() {
		if err := k.Verify(benchMsg, sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyAnyWithoutKeyID verifies a MAC made with the last of 3
// valid keys: three MACs, the cost of not naming the key.
func BenchmarkVerifyAnyWithoutKeyID(b *testing.B) {
	k := benchKeyring(b)
	mac := macOf(k.Set().Next.Value, benchMsg)
	b.SetBytes(int64(len(benchMsg)))
	for b.Loop() {
		if err := k.VerifyAny(benchMsg, mac); err != nil {
			b.Fatal(err)
		}
	}
}
