package clerkmachine_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/clerkmachine"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

type fixture struct {
	fake      *clerkfake.Server
	p         *clerkmachine.Provider
	machineID string
	original  string // the machine's key before any rotation
}

func setup(t *testing.T, env map[string]string) *fixture {
	t.Helper()
	fake := clerkfake.New(t)
	id, secret := fake.AddMachine("billing-worker")
	if env == nil {
		env = map[string]string{"CLERK_SECRET_KEY": fake.Key()}
	}
	p, err := clerkmachine.New("billing-m2m", clerkmachine.Options{APIURL: fake.URL(), MachineID: id},
		clerkmachine.WithHTTPClient(fake.Client()),
		clerkmachine.WithRetryWait(func(context.Context, time.Duration) error { return nil }),
		clerkmachine.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{fake: fake, p: p, machineID: id, original: secret}
}

// noLeak fails the test if any secret value shows in err.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	text := fmt.Sprintf("%v %+v", err, err)
	for _, s := range secrets {
		if s != "" && strings.Contains(text, s) {
			t.Fatalf("error text leaks a secret value: %s", text)
		}
	}
}

func (f *fixture) secrets() []string {
	return []string{f.fake.Key(), f.original, f.fake.MachineSecret(f.machineID)}
}

func TestRotateKeepsTheOldKeyForTheGracePeriod(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	cur := &store.Key{Value: f.original, ID: "kid-0"}
	cred, err := f.p.Mint(ctx, provider.MintRequest{Secret: "billing-m2m", Current: cur, Grace: 2 * time.Hour})
	noLeak(t, err, f.secrets()...)
	if err != nil {
		t.Fatal(err)
	}
	if cred.Value == "" || cred.Value == f.original {
		t.Fatal("Mint did not return a new key")
	}
	if cred.Meta[clerkmachine.MetaMachineID] != f.machineID || cred.Meta[clerkmachine.MetaPreviousTokenTTL] != "7200" {
		t.Errorf("meta = %v", cred.Meta)
	}
	if n, ttl := f.fake.Rotations(f.machineID); n != 1 || ttl != 7200 {
		t.Fatalf("rotations = %d (ttl %d), want 1 (ttl 7200)", n, ttl)
	}
	check := func(when, key string, wantOK bool) {
		t.Helper()
		err := f.p.Test(ctx, key)
		noLeak(t, err, f.secrets()...)
		switch {
		case wantOK && err != nil:
			t.Fatalf("%s: Test = %v, want nil", when, err)
		case !wantOK && !errors.Is(err, provider.ErrRejected):
			t.Fatalf("%s: Test = %v, want ErrRejected", when, err)
		}
	}
	check("new key", cred.Value, true)
	check("old key right after", f.original, true)
	f.fake.Advance(2*time.Hour - time.Second)
	check("old key just before ttl", f.original, true)
	f.fake.Advance(time.Second)
	check("old key at ttl", f.original, false)
	check("new key later", cred.Value, true)
	if err := f.p.Revoke(ctx, store.Key{Value: f.original, ID: "kid-0"}); err != nil {
		t.Errorf("Revoke = %v, want nil (Clerk expires it)", err)
	}
}

func TestGraceIsCappedAtEightHours(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	cur := &store.Key{Value: f.original, ID: "kid-0"}
	cred, err := f.p.Mint(t.Context(), provider.MintRequest{Current: cur, Grace: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if _, ttl := f.fake.Rotations(f.machineID); ttl != 28800 {
		t.Fatalf("previous_token_ttl = %d, want 28800", ttl)
	}
	if cred.Meta[clerkmachine.MetaPreviousTokenTTL] != "28800" {
		t.Errorf("meta = %v", cred.Meta)
	}
	f.fake.Advance(8*time.Hour - time.Second)
	if err := f.p.Test(t.Context(), f.original); err != nil {
		t.Fatalf("old key before 8h: %v", err)
	}
	f.fake.Advance(time.Second)
	if err := f.p.Test(t.Context(), f.original); !errors.Is(err, provider.ErrRejected) {
		t.Fatalf("old key at 8h: %v, want ErrRejected", err)
	}
}

func TestPreviousTokenTTLRounding(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		grace time.Duration
		want  int
	}{
		"zero":          {0, 0},
		"negative":      {-time.Hour, 0},
		"sub-second up": {1500 * time.Millisecond, 2},
		"90m":           {90 * time.Minute, 5400},
		"exactly 8h":    {8 * time.Hour, 28800},
		"30 days":       {720 * time.Hour, 28800},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, nil)
			if _, err := f.p.Mint(t.Context(), provider.MintRequest{Grace: tt.grace}); err != nil {
				t.Fatal(err)
			}
			if _, ttl := f.fake.Rotations(f.machineID); ttl != tt.want {
				t.Fatalf("previous_token_ttl = %d, want %d", ttl, tt.want)
			}
		})
	}
}

func TestGraceWarning(t *testing.T) {
	t.Parallel()
	want := "clerk-machine: grace 24h exceeds Clerk's maximum previous_token_ttl of 8h; the previous key will stop working after 8h"
	if got := clerkmachine.GraceWarning(24 * time.Hour); got != want {
		t.Errorf("GraceWarning(24h) = %q\nwant %q", got, want)
	}
	for _, g := range []time.Duration{0, time.Hour, 8 * time.Hour} {
		if got := clerkmachine.GraceWarning(g); got != "" {
			t.Errorf("GraceWarning(%s) = %q, want none", g, got)
		}
	}
	if got := clerkmachine.GraceWarning(8*time.Hour + 30*time.Minute); !strings.Contains(got, "8h30m0s") {
		t.Errorf("GraceWarning(8h30m) = %q", got)
	}
}

func TestMintIsNotRepeatedAfterACrash(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	cur := &store.Key{Value: f.original, ID: "kid-0"}
	req := provider.MintRequest{Current: cur, Grace: time.Hour}
	first, err := f.p.Mint(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	// rotor stopped before saving first as pending; the next run mints
	// again with the same current key.
	second, err := f.p.Mint(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	if second.Value != first.Value || second.Meta[clerkmachine.MetaRecovered] != "true" {
		t.Fatalf("second Mint did not adopt the key Clerk already issued (meta %v)", second.Meta)
	}
	if n, _ := f.fake.Rotations(f.machineID); n != 1 {
		t.Fatalf("rotations = %d, want 1: a second rotate ends the old key's grace", n)
	}
	if err := f.p.Test(t.Context(), f.original); err != nil {
		t.Fatalf("the original key lost its grace: %v", err)
	}
}

func TestRotateRetries(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		reason    string
		status    int
		wantErr   bool
		wantCalls int
	}{
		"429 is retried": {reason: "nothing was done", status: http.StatusTooManyRequests, wantCalls: 2},
		"503 is not": {reason: "Clerk may have rotated: a second rotate would end the old key's grace",
			status: http.StatusServiceUnavailable, wantErr: true, wantCalls: 1},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, nil)
			f.fake.FailNext(1, tt.status)
			_, err := f.p.Mint(t.Context(), provider.MintRequest{Grace: time.Hour})
			noLeak(t, err, f.secrets()...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Mint = %v, wantErr %v", err, tt.wantErr)
			}
			if got := f.fake.Requests("POST /v1/machines/{id}/secret_key/rotate"); got != tt.wantCalls {
				t.Errorf("rotate calls = %d, want %d: %s", got, tt.wantCalls, tt.reason)
			}
		})
	}
}

func TestInstanceKeyProblems(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env  map[string]string
		want string
	}{
		"unset":       {map[string]string{}, "CLERK_SECRET_KEY (instance_key_env) is not set"},
		"not a key":   {map[string]string{"CLERK_SECRET_KEY": "hunter2-hunter2"}, "does not hold a Clerk instance secret key"},
		"deleted key": {map[string]string{"CLERK_SECRET_KEY": "sk_test_deleteddeleteddeleteddeleted"}, "401"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tt.env)
			_, err := f.p.Mint(t.Context(), provider.MintRequest{Grace: time.Hour})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Mint = %v, want an error containing %q", err, tt.want)
			}
			noLeak(t, err, append(f.secrets(), tt.env["CLERK_SECRET_KEY"])...)
			if n, _ := f.fake.Rotations(f.machineID); n != 0 {
				t.Errorf("rotated anyway")
			}
		})
	}
}

func TestTestRejectsWrongKeys(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	_, otherMachineKey := f.fake.AddMachine("other")
	tests := map[string]struct {
		value, want string
	}{
		"instance key":        {f.fake.Key(), "instance secret key"},
		"other machine's key": {otherMachineKey, "another machine"},
		"unknown key":         {"ak_unknownunknownunknownunknown", "does not accept"},
		"empty":               {"", "empty"},
		"trailing newline":    {f.original + "\n", "whitespace"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := f.p.Test(t.Context(), tt.value)
			if !errors.Is(err, provider.ErrRejected) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Test = %v, want ErrRejected containing %q", err, tt.want)
			}
			noLeak(t, err, append(f.secrets(), otherMachineKey, tt.value)...)
		})
	}
}

func TestTestOutageIsNotRejection(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	f.fake.FailNext(10, http.StatusBadGateway)
	err := f.p.Test(t.Context(), f.original)
	if err == nil || errors.Is(err, provider.ErrRejected) {
		t.Fatalf("Test during an outage = %v, want an unknown answer", err)
	}
	noLeak(t, err, f.secrets()...)
}

func ExampleGraceWarning() {
	if w := clerkmachine.GraceWarning(24 * time.Hour); w != "" {
		fmt.Println(w)
	}
	// Output: clerk-machine: grace 24h exceeds Clerk's maximum previous_token_ttl of 8h; the previous key will stop working after 8h
}

// TestRecoverFindsTheKeyOfAnInterruptedRotate: Clerk rotated, rotor never
// saved the answer. Recover reads the machine's key back without rotating
// again; before any rotate it answers ErrNotMinted.
func TestRecoverFindsTheKeyOfAnInterruptedRotate(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	cur := &store.Key{Value: f.original, ID: "kid-0"}
	req := provider.MintRequest{Current: cur, Grace: time.Hour, RequestID: "req-1"}
	_, err := f.p.Recover(ctx, req)
	noLeak(t, err, f.secrets()...)
	if !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Recover before any rotate = %v, want ErrNotMinted", err)
	}
	minted, err := f.p.Mint(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.p.Recover(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got.Value != minted.Value || got.Meta[clerkmachine.MetaRecovered] != "true" {
		t.Fatalf("Recover did not return the key the rotate created (meta %v)", got.Meta)
	}
	if n, _ := f.fake.Rotations(f.machineID); n != 1 {
		t.Fatalf("rotations = %d, want 1: Recover must not rotate", n)
	}
	first, err := f.p.Recover(ctx, provider.MintRequest{RequestID: "req-0"})
	if err != nil || first.Value != minted.Value {
		t.Fatalf("Recover on first issue = %v, want the machine's key", err)
	}
}

// TestEngineResumesAnInterruptedRotate runs the rotation engine against
// the Clerk emulator and kills it (see rotationtest's crash points) right
// after Clerk answered the rotate: the next run takes the key Clerk issued,
// reports nothing orphaned, and the old key keeps its grace period.
func TestEngineResumesAnInterruptedRotate(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	st := memstore.New()
	eng := &rotation.Engine{Store: st, Salt: []byte("clerk-machine-test"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "billing-m2m", Provider: f.p, Every: time.Hour, Grace: time.Hour, Lease: time.Minute}
	seed := &store.Secret{Name: sec.Name, Current: &store.Key{Value: f.original, ID: "0123456789abcdef"}}
	if _, err := st.Save(ctx, seed, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	crashed := &rotation.Engine{Store: st, Salt: eng.Salt, Initiator: "user:test", Holder: "gone:1:x",
		HolderAlive: func(string) bool { return false },
		OnStep: func(_ string, step store.Step, _ *store.Secret) {
			if step == rotation.StepMinted {
				panic("killed")
			}
		}}
	func() {
		defer func() { _ = recover() }()
		_, _ = crashed.Rotate(ctx, sec)
	}()
	eng.HolderAlive = func(h string) bool { return h != crashed.Holder }
	res, err := eng.Rotate(ctx, sec)
	noLeak(t, err, f.secrets()...)
	if err != nil || !res.Resumed {
		t.Fatalf("resumed rotation = %+v, %v", res, err)
	}
	s, _, _ := st.Load(ctx, sec.Name)
	if s.Current.Value != f.fake.MachineSecret(f.machineID) || s.Previous == nil || s.Previous.Value != f.original {
		t.Fatal("current is not the key Clerk issued over the original")
	}
	if len(s.Orphans) != 0 {
		t.Fatalf("orphans reported: %v", s.Orphans)
	}
	if n, _ := f.fake.Rotations(f.machineID); n != 1 {
		t.Fatalf("rotations = %d, want 1", n)
	}
	if err := f.p.Test(ctx, f.original); err != nil {
		t.Fatalf("the original key lost its grace: %v", err)
	}
}

// TestIssuerExpiryOfTheReplacedKey: the engine records when Clerk ends the
// replaced key (previous_token_ttl, capped at 8h, from the rotation) on
// it; after a rollback to it the secret is due half a grace period before
// that deadline, long before its 30-day interval.
func TestIssuerExpiryOfTheReplacedKey(t *testing.T) {
	t.Parallel()
	f := setup(t, nil)
	ctx := t.Context()
	st := memstore.New()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	eng := &rotation.Engine{Store: st, Salt: []byte("clerk-machine-test"), Initiator: "user:test", Now: func() time.Time { return now }}
	sec := rotation.Secret{Name: "billing-m2m", Provider: f.p, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: time.Minute}
	seed := &store.Secret{Name: sec.Name, Current: &store.Key{Value: f.original, ID: "0123456789abcdef", CreatedAt: now}}
	if _, err := st.Save(ctx, seed, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s, _, _ := st.Load(ctx, sec.Name)
	if got, want := s.Previous.IssuerExpiresAt(), now.Add(8*time.Hour); !got.Equal(want) {
		t.Fatalf("previous issuer expiry = %v, want %v (the 24h grace capped at 8h)", got, want)
	}
	if _, err := eng.Rollback(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s, _, _ = st.Load(ctx, sec.Name)
	if got, want := sec.NextRotation(s), now.Add(8*time.Hour-12*time.Hour); !got.Equal(want) {
		t.Fatalf("next rotation after the rollback = %v, want %v (half the grace before Clerk ends the key)", got, want)
	}
}
