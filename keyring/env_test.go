package keyring

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/keyring/keyid"
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

func TestEnvVars(t *testing.T) {
	sec := newSecrets(t)
	cur, prev, next := sec.key(), sec.key(), sec.key()
	tests := []struct {
		name   string
		reason string
		set    Set
		want   []string
	}{
		{name: "grace period", reason: "both keys and both ids, in rotor run's order",
			set: Set{Current: cur, Previous: expiring(prev, epoch), Next: ptr(next)},
			want: []string{"APP_KEY=" + cur.Value, "APP_KEY_PRIMARY=" + cur.Value, "APP_KEY_SECONDARY=" + prev.Value,
				"APP_KEY_KEY_ID=" + cur.ID, "APP_KEY_SECONDARY_KEY_ID=" + prev.ID}},
		{name: "no previous", reason: "the secondary variables are present and empty, so a restarted child loses the old key",
			set:  Set{Current: cur},
			want: []string{"APP_KEY=" + cur.Value, "APP_KEY_PRIMARY=" + cur.Value, "APP_KEY_SECONDARY=", "APP_KEY_KEY_ID=" + cur.ID, "APP_KEY_SECONDARY_KEY_ID="}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := EnvVars("APP_KEY", tt.set); !slices.Equal(got, tt.want) {
				t.Errorf("EnvVars() = %d variables, want %d (%s)", len(got), len(tt.want), tt.reason)
				for i := range max(len(got), len(tt.want)) {
					if i >= len(got) || i >= len(tt.want) || got[i] != tt.want[i] {
						t.Errorf("variable %d differs", i)
					}
				}
			}
		})
	}
}

// TestEnvRoundTrip: what EnvVars writes, EnvSource reads back as the same
// keys with the same ids; only what the environment cannot carry (the next
// key, expiry, version) is lost.
func TestEnvRoundTrip(t *testing.T) {
	sec := newSecrets(t)
	cur, prev := sec.key(), sec.key()
	prev.ID = "rotor-id-of-previous" // ids travel as they are, not recomputed
	for name, set := range map[string]Set{
		"current only":         {Current: cur, Version: "3"},
		"current and previous": {Current: cur, Previous: expiring(prev, epoch.Add(time.Hour)), Next: ptr(sec.key()), Version: "4"},
	} {
		t.Run(name, func(t *testing.T) {
			env := map[string]string{}
			for _, kv := range EnvVars("APP_KEY", set) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			got, err := EnvSource("APP_KEY", func(k string) string { return env[k] }).Load(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			want := Set{Current: set.Current}
			if set.Previous != nil {
				want.Previous = &Key{Value: set.Previous.Value, ID: set.Previous.ID}
			}
			if !got.equal(want) {
				t.Errorf("read back %v, want %v", got.LogValue(), want.LogValue())
			}
		})
	}
}

func TestSetUnexpired(t *testing.T) {
	sec := newSecrets(t)
	cur, prev, next := sec.key(), sec.key(), sec.key()
	cur.ExpiresAt = epoch // ignored on the current key
	set := Set{Current: cur, Previous: expiring(prev, epoch.Add(time.Hour)), Next: expiring(next, epoch.Add(2*time.Hour)), Version: "9"}
	tests := []struct {
		name     string
		reason   string
		at       time.Time
		wantPrev bool
		wantNext bool
	}{
		{name: "before both expiries", reason: "valid keys stay", at: epoch.Add(time.Hour - time.Nanosecond), wantPrev: true, wantNext: true},
		{name: "at the previous expiry", reason: "a key is valid strictly before its ExpiresAt", at: epoch.Add(time.Hour), wantNext: true},
		{name: "after both", reason: "an expired next key goes too", at: epoch.Add(3 * time.Hour)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := set.Unexpired(tt.at)
			if got.Current.Value != cur.Value || got.Version != "9" {
				t.Errorf("current or version changed (%s)", tt.reason)
			}
			if (got.Previous != nil) != tt.wantPrev || (got.Next != nil) != tt.wantNext {
				t.Errorf("previous kept %v, next kept %v; want %v, %v (%s)", got.Previous != nil, got.Next != nil, tt.wantPrev, tt.wantNext, tt.reason)
			}
		})
	}
	if set.Unexpired(epoch.Add(3 * time.Hour)); set.Previous == nil || set.Next == nil {
		t.Error("Unexpired changed the set it was called on")
	}
}
