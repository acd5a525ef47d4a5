package keyring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func macOf(value string, msg []byte) []byte {
	m := hmac.New(sha256.New, []byte(value))
	m.Write(msg)
	return m.Sum(nil)
}

func TestSignFormat(t *testing.T) {
	sec := newSecrets(t)
	cur := sec.key()
	k := mustNew(t, StaticSource(Set{Current: cur}), newClock())
	msg := []byte(`{"event":"user.created"}`)
	sig := k.Sign(msg)
	want := "v1," + cur.ID + "," + base64.RawURLEncoding.EncodeToString(macOf(cur.Value, msg))
	if sig != want {
		t.Errorf("Sign() = %s, want %s", sig, want)
	}
	sec.checkNoValue("signature", sig)
}

func TestVerify(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	old, cur, next, stranger := sec.key(), sec.key(), sec.key(), sec.key()
	grace := epoch.Add(time.Hour)
	msg := []byte(`{"event":"session.ended"}`)

	// Signatures as other processes, holding other sets, made them.
	signWith := func(key Key) string {
		return mustNew(t, StaticSource(Set{Current: key}), c).Sign(msg)
	}
	byOld, byCur, byNext, byStranger := signWith(old), signWith(cur), signWith(next), signWith(stranger)
	k := mustNew(t, StaticSource(Set{Current: cur, Previous: expiring(old, grace), Next: ptr(next)}), c)

	tamper := func(sig string) string {
		b := []byte(sig)
		i := len(b) - 5
		b[i] ^= 'A' ^ 'B'
		if b[i] == sig[i] {
			b[i] = 'C'
		}
		return string(b)
	}
	tests := []struct {
		name    string
		reason  string
		msg     string
		sig     string
		advance time.Duration
		want    error // nil: valid
		also    error
	}{
		{name: "current", reason: "round trip", msg: string(msg), sig: byCur},
		{name: "previous in grace", reason: "peers that have not reloaded yet", msg: string(msg), sig: byOld},
		{name: "next", reason: "peers that adopted the next key first", msg: string(msg), sig: byNext},
		{name: "previous expired", reason: "grace period over", msg: string(msg), sig: byOld, advance: time.Hour, want: ErrInvalidSignature, also: ErrExpiredKey},
		{name: "current after grace", reason: "the current key never expires", msg: string(msg), sig: byCur, advance: 48 * time.Hour},
		{name: "tampered message", reason: "the MAC covers the message", msg: string(msg) + " ", sig: byCur, want: ErrInvalidSignature},
		{name: "tampered MAC", reason: "one changed character", msg: string(msg), sig: tamper(byCur), want: ErrInvalidSignature},
		{name: "unknown id", reason: "a key we do not hold", msg: string(msg), sig: byStranger, want: ErrInvalidSignature, also: ErrUnknownKey},
		{name: "id swapped", reason: "a MAC under one key named as another", msg: string(msg), sig: strings.Replace(byOld, old.ID, cur.ID, 1), want: ErrInvalidSignature},
		{name: "empty", reason: "malformed", msg: string(msg), sig: "", want: ErrInvalidSignature},
		{name: "wrong version", reason: "only v1 exists", msg: string(msg), sig: "v2" + byCur[2:], want: ErrInvalidSignature},
		{name: "no MAC", reason: "malformed", msg: string(msg), sig: "v1," + cur.ID, want: ErrInvalidSignature},
		{name: "short MAC", reason: "truncated", msg: string(msg), sig: byCur[:len(byCur)-1], want: ErrInvalidSignature},
		{name: "padded MAC", reason: "one encoding only", msg: string(msg), sig: byCur + "=", want: ErrInvalidSignature},
		{name: "bad base64", reason: "malformed", msg: string(msg), sig: byCur[:len(byCur)-1] + "!", want: ErrInvalidSignature},
		{name: "extra field", reason: "the MAC may not contain commas", msg: string(msg), sig: byCur + ",x", want: ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Advance(tt.advance)
			defer c.Advance(-tt.advance)
			err := k.Verify([]byte(tt.msg), tt.sig)
			switch {
			case tt.want == nil && err != nil:
				t.Errorf("Verify() = %v, want success (%s)", err, tt.reason)
			case tt.want != nil && !errors.Is(err, tt.want):
				t.Errorf("Verify() = %v, want %v (%s)", err, tt.want, tt.reason)
			case tt.also != nil && !errors.Is(err, tt.also):
				t.Errorf("Verify() = %v, want it to wrap %v too (%s)", err, tt.also, tt.reason)
			}
			sec.checkErr(err)
		})
	}
}

func TestNonCanonicalBase64Rejected(t *testing.T) {
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key()}), newClock())
	msg := []byte("m")
	sig := k.Sign(msg)
	// The last of 43 characters carries 4 bits of MAC and 2 unused bits;
	// setting an unused bit gives another string that decodes the same.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	alt := sig[:len(sig)-1] + string(alphabet[last|1])
	if alt == sig {
		alt = sig[:len(sig)-1] + string(alphabet[last|2])
	}
	if err := k.Verify(msg, alt); !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("a non-canonical encoding of a valid MAC was accepted: %v", err)
	}
}

func TestVerifyAny(t *testing.T) {
	sec := newSecrets(t)
	c := newClock()
	old, cur, next, stranger := sec.key(), sec.key(), sec.key(), sec.key()
	k := mustNew(t, StaticSource(Set{Current: cur, Previous: expiring(old, epoch.Add(time.Hour)), Next: ptr(next)}), c)
	msg := []byte("webhook body")
	tests := []struct {
		name    string
		mac     []byte
		advance time.Duration
		valid   bool
	}{
		{name: "current", mac: macOf(cur.Value, msg), valid: true},
		{name: "previous", mac: macOf(old.Value, msg), valid: true},
		{name: "next", mac: macOf(next.Value, msg), valid: true},
		{name: "previous expired", mac: macOf(old.Value, msg), advance: time.Hour},
		{name: "stranger", mac: macOf(stranger.Value, msg)},
		{name: "other message", mac: macOf(cur.Value, []byte("other"))},
		{name: "truncated", mac: macOf(cur.Value, msg)[:16]},
		{name: "empty", mac: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.Advance(tt.advance)
			defer c.Advance(-tt.advance)
			err := k.VerifyAny(msg, tt.mac)
			if tt.valid && err != nil || !tt.valid && !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("VerifyAny() = %v, want valid=%v", err, tt.valid)
			}
			sec.checkErr(err)
		})
	}
}

func TestSignAndVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	sec := newSecrets(t)
	k := mustNew(t, StaticSource(Set{Current: sec.key(), Previous: ptr(sec.key()), Next: ptr(sec.key())}), newClock())
	msg := []byte("payload")
	sig := k.Sign(msg)
	mac := macOf(k.Set().Next.Value, msg)
	// Warm the MAC pools.
	_, _, _ = k.Sign(msg), k.Verify(msg, sig), k.VerifyAny(msg, mac)
	for _, tt := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"Sign", 1, func() { _ = k.Sign(msg) }}, // the returned string
		{"Verify", 0, func() {
			if err := k.Verify(msg, sig); err != nil {
				t.Fatal(err)
			}
		}},
		{"VerifyAny", 0, func() {
			if err := k.VerifyAny(msg, mac); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		if n := testing.AllocsPerRun(200, tt.fn); n > tt.max {
			t.Errorf("%s allocates %v times per call, want at most %v", tt.name, n, tt.max)
		}
	}
}

func FuzzVerify(f *testing.F) {
	set := Set{Current: Key{Value: "current-secret", ID: "c1"}, Previous: &Key{Value: "previous-secret", ID: "p1"}}
	k, err := New(f.Context(), StaticSource(set))
	if err != nil {
		f.Fatal(err)
	}
	prev, err := New(f.Context(), StaticSource(Set{Current: *set.Previous}))
	if err != nil {
		f.Fatal(err)
	}
	good := k.Sign([]byte("msg"))
	f.Add([]byte("msg"), good)
	f.Add([]byte("msg"), prev.Sign([]byte("msg")))
	f.Add([]byte("msg"), "v1,p1,"+strings.Repeat("A", 43))
	f.Add([]byte(""), "v1,,")
	f.Add([]byte("x"), "v1,c1,"+good[6:]+"=")
	f.Fuzz(func(t *testing.T, msg []byte, sig string) {
		err := k.Verify(msg, sig)
		if err != nil {
			if !errors.Is(err, ErrInvalidSignature) {
				t.Fatalf("Verify error %v does not wrap ErrInvalidSignature", err)
			}
			if strings.Contains(err.Error(), set.Current.Value) || strings.Contains(err.Error(), set.Previous.Value) {
				t.Fatalf("error leaks a value: %v", err)
			}
			return
		}
		// Accepted: it must be exactly what Sign makes with one of the keys.
		if sig != k.Sign(msg) && sig != prev.Sign(msg) {
			t.Fatalf("Verify accepted %q, which Sign would not make for %q", sig, msg)
		}
	})
}
