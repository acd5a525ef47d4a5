package clerk_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkapi"
	"github.com/rotor-dev/rotor/internal/clerkfake"
	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// The Platform API routes as the emulator counts them; the operation ids
// are those of Clerk's published OpenAPI document (clerk/openapi-specs,
// platform/beta.yml).
const (
	routeRotate = "POST /v1/platform/applications/{applicationID}/instances/{envOrInsID}/rotate_secret_keys" // PlatformRotateInstanceSecretKeys
	routeGetApp = "GET /v1/platform/applications/{applicationID}"                                            // PlatformGetApplication
)

const platformToken = "platform-token-for-tests-0123456789"

type platformFixture struct {
	fake *clerkfake.Server
	p    *clerk.Provider
	w    *waits
	env  map[string]string
}

// newPlatform returns a provider in platform mode for the fake's
// application; instance defaults to the fake's environment type.
func newPlatform(t *testing.T, fake *clerkfake.Server, pl clerk.Platform) *platformFixture {
	t.Helper()
	if pl.ApplicationID == "" {
		pl.ApplicationID = fake.ApplicationID()
	}
	if pl.Instance == "" {
		pl.Instance = "development"
		if fake.Environment() == "live" {
			pl.Instance = "production"
		}
	}
	f := &platformFixture{fake: fake, w: &waits{}, env: map[string]string{clerk.DefaultTokenEnv: platformToken}}
	p, err := clerk.New("clerk-secret-key", clerk.Options{APIURL: fake.URL(), Platform: &pl},
		clerk.WithHTTPClient(fake.Client()),
		clerk.WithRetryWait(f.w.wait),
		clerk.WithClock(func() time.Time { return fixedNow }),
		clerk.WithLookupEnv(func(k string) (string, bool) { v, ok := f.env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	return f
}

func platformFake(t *testing.T, opts ...clerkfake.Option) *clerkfake.Server {
	return clerkfake.New(t, append([]clerkfake.Option{clerkfake.WithPlatformToken(platformToken)}, opts...)...)
}

// TestPlatformMintRotatesWithTheGraceAsDelay: Mint is one
// PlatformRotateInstanceSecretKeys call whose
// delay_old_secrets_expiration_hours is the grace rounded up to whole
// hours and whose reason names the secret; the new key tests, the old one
// keeps working until the delay is over on Clerk's clock and is then
// rejected, which is when Revoke confirms.
func TestPlatformMintRotatesWithTheGraceAsDelay(t *testing.T) {
	t.Parallel()
	fake := platformFake(t, clerkfake.Live())
	f := newPlatform(t, fake, clerk.Platform{})
	old := fake.Key()
	cur := &store.Key{Value: old, ID: "kid-old"}
	cred, err := f.p.Mint(t.Context(), provider.MintRequest{Secret: "clerk-secret-key", Current: cur, Grace: 90 * time.Minute})
	noLeak(t, err, old, platformToken)
	if err != nil {
		t.Fatal(err)
	}
	rots := fake.PlatformRotations()
	if len(rots) != 1 || rots[0].DelayHours != 2 || !strings.Contains(rots[0].Reason, "clerk-secret-key") {
		t.Fatalf("rotate calls = %+v, want one with delay 2h (90m rounded up) and the secret in its reason", rots)
	}
	if !strings.HasPrefix(cred.Value, "sk_live_") || cred.Value == old ||
		cred.Meta[clerk.MetaDelayHours] != "2" || cred.Meta[clerk.MetaInstanceID] != fake.InstanceID() {
		t.Fatalf("minted credential meta %v (live key: %v)", cred.Meta, strings.HasPrefix(cred.Value, "sk_live_"))
	}
	for _, k := range []string{cred.Value, old} {
		if err := f.p.Test(t.Context(), k); err != nil {
			t.Fatalf("Test during the delay = %v", err)
		}
	}
	oldKey := store.Key{Value: old, ID: "kid-old"}
	err = f.p.Revoke(t.Context(), oldKey)
	if err == nil || errors.Is(err, provider.ErrCannotMint) || !strings.Contains(err.Error(), "kid-old") {
		t.Fatalf("Revoke while Clerk still accepts the key = %v, want an error naming it and asking nothing of the operator", err)
	}
	noLeak(t, err, old, cred.Value)

	fake.Advance(2*time.Hour - time.Second)
	if err := f.p.Test(t.Context(), old); err != nil {
		t.Fatalf("old key rejected before the delay ended: %v", err)
	}
	fake.Advance(time.Second)
	if err := f.p.Test(t.Context(), old); !errors.Is(err, provider.ErrRejected) {
		t.Fatalf("Test(old key after the delay) = %v, want ErrRejected", err)
	}
	if err := f.p.Revoke(t.Context(), oldKey); err != nil {
		t.Fatalf("Revoke after Clerk deleted the key = %v", err)
	}
	if err := f.p.Test(t.Context(), cred.Value); err != nil {
		t.Fatalf("the new key stopped working: %v", err)
	}
}

// TestPlatformInstanceByIDOrEnvironment: envOrInsID of
// PlatformRotateInstanceSecretKeys takes the instance id as well as the
// environment type; an unknown instance or application answers 404, which
// the error explains in the terms of the config, with nothing rotated.
func TestPlatformInstanceByIDOrEnvironment(t *testing.T) {
	t.Parallel()
	fake := platformFake(t)
	byID := newPlatform(t, fake, clerk.Platform{Instance: fake.InstanceID()})
	cred, err := byID.p.Mint(t.Context(), provider.MintRequest{Secret: "s", Grace: time.Hour})
	if err != nil || !strings.HasPrefix(cred.Value, "sk_test_") {
		t.Fatalf("Mint by instance id = %v", err)
	}
	for name, pl := range map[string]clerk.Platform{
		"other environment": {Instance: "production"},
		"unknown instance":  {Instance: "ins_unknown"},
		"unknown app":       {ApplicationID: "app_unknown"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newPlatform(t, fake, pl)
			_, err := f.p.Mint(t.Context(), provider.MintRequest{Secret: "s", Grace: time.Hour})
			if clerkapi.StatusOf(err) != http.StatusNotFound || !strings.Contains(err.Error(), "clerk.platform.application_id") {
				t.Fatalf("Mint = %v, want a 404 naming the config keys", err)
			}
		})
	}
	if n := len(fake.PlatformRotations()); n != 1 {
		t.Fatalf("rotations = %d, want 1", n)
	}
}

// TestPlatformTokenProblems: a missing or wrong Platform API token ends
// Mint with an error naming the variable (clerk.platform.token_env),
// never the token, and nothing is rotated.
func TestPlatformTokenProblems(t *testing.T) {
	t.Parallel()
	fake := platformFake(t)
	f := newPlatform(t, fake, clerk.Platform{TokenEnv: "MY_PLATFORM_TOKEN"})
	req := provider.MintRequest{Secret: "s", Current: &store.Key{Value: fake.Key(), ID: "kid"}, Grace: time.Hour}

	_, err := f.p.Mint(t.Context(), req)
	if err == nil || !strings.Contains(err.Error(), "MY_PLATFORM_TOKEN (clerk.platform.token_env) is not set") {
		t.Fatalf("Mint without the token = %v", err)
	}
	const wrong = "wrong-platform-token-abcdefghijkl"
	f.env["MY_PLATFORM_TOKEN"] = wrong
	_, err = f.p.Mint(t.Context(), req)
	noLeak(t, err, wrong, platformToken, fake.Key())
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "MY_PLATFORM_TOKEN (clerk.platform.token_env)") {
		t.Fatalf("Mint with a wrong token = %v", err)
	}
	if !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Mint with a wrong token = %v, want ErrNotMinted: Clerk refused the call", err)
	}
	if n := len(fake.PlatformRotations()); n != 0 || fake.KeyCount() != 1 {
		t.Fatalf("rotations = %d, keys = %d: a refused call changed Clerk", n, fake.KeyCount())
	}
	if len(f.w.all()) != 0 {
		t.Fatal("a 401 was retried")
	}
}

// TestPlatformRotateRetries: the rotate call is retried after a 429 (Clerk
// did not act on it) and never after a 5xx (Clerk may have), and the error
// then leaves open whether a key was minted.
func TestPlatformRotateRetries(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		route      string
		status     int
		retryAfter time.Duration
		wantErr    bool
		wantCalls  int // rotate requests
		wantWaits  []time.Duration
	}{
		"429 on rotate is retried after Retry-After": {routeRotate, 429, 3 * time.Second, false, 2, []time.Duration{3 * time.Second}},
		"503 on rotate is not retried":               {routeRotate, 503, 0, true, 1, nil},
		"500 on rotate is not retried":               {routeRotate, 500, 0, true, 1, nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := platformFake(t)
			f := newPlatform(t, fake, clerk.Platform{})
			fake.FailNextOn(tt.route, 1, tt.status, tt.retryAfter)
			cred, err := f.p.Mint(t.Context(), provider.MintRequest{Secret: "s", Current: &store.Key{Value: fake.Key(), ID: "kid"}, Grace: time.Hour})
			noLeak(t, err, fake.Key(), platformToken)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Mint = %v, want error %v", err, tt.wantErr)
			}
			if errors.Is(err, provider.ErrNotMinted) {
				t.Fatalf("Mint = %v: after a %d Clerk may have rotated, so it must not claim nothing was minted", err, tt.status)
			}
			if got := fake.Requests(routeRotate); got != tt.wantCalls {
				t.Errorf("rotate requests = %d, want %d", got, tt.wantCalls)
			}
			if got := f.w.all(); len(got) != len(tt.wantWaits) || len(got) > 0 && got[0] != tt.wantWaits[0] {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			if !tt.wantErr && f.p.Test(t.Context(), cred.Value) != nil {
				t.Error("minted key does not test")
			}
		})
	}
}

// TestPlatformRecover: Clerk rotated but rotor never saved the answer (it
// died in between). Recover reads the instance's key
// (PlatformGetApplication with include_secret_keys=true, retried after a
// 503) and, as it is neither current nor previous, returns it without
// rotating; while Clerk's key is one rotor knows, it answers ErrNotMinted.
func TestPlatformRecover(t *testing.T) {
	t.Parallel()
	fake := platformFake(t)
	f := newPlatform(t, fake, clerk.Platform{})
	rec, ok := f.p.ForEngine().(provider.Recoverer)
	if !ok {
		t.Fatal("a platform-mode provider is not a provider.Recoverer for the engine")
	}
	old := fake.Key()
	req := provider.MintRequest{Secret: "s", Current: &store.Key{Value: old, ID: "kid-old"}, Grace: time.Hour, RequestID: "rotate-mint-1"}
	_, err := rec.Recover(t.Context(), req)
	if !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Recover before any rotate = %v, want ErrNotMinted", err)
	}
	lost, err := f.p.Mint(t.Context(), req) // its answer is "lost"
	if err != nil {
		t.Fatal(err)
	}
	fake.FailNextOn(routeGetApp, 1, http.StatusServiceUnavailable, 2*time.Second)
	got, err := rec.Recover(t.Context(), req)
	noLeak(t, err, old, lost.Value, platformToken)
	if err != nil || got.Value != lost.Value || got.Meta[clerk.MetaRecovered] != "true" {
		t.Fatalf("Recover = %v (meta %v), want the key of the lost answer", err, got.Meta)
	}
	if w := f.w.all(); len(w) != 1 || w[0] != 2*time.Second {
		t.Fatalf("waits = %v: the read was not retried after the 503", w)
	}
	if n := len(fake.PlatformRotations()); n != 1 {
		t.Fatalf("rotate calls = %d, want 1: Recover must only read", n)
	}
	// Once saved as current over the old key (previous), nothing is left
	// to recover.
	_, err = rec.Recover(t.Context(), provider.MintRequest{Secret: "s", RequestID: "rotate-mint-2",
		Current: &store.Key{Value: lost.Value, ID: "kid-1"}, Previous: &store.Key{Value: old, ID: "kid-old"}})
	if !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Recover with Clerk's key current = %v, want ErrNotMinted", err)
	}
	if first, err := rec.Recover(t.Context(), provider.MintRequest{Secret: "s", RequestID: "rotate-mint-0"}); err != nil || first.Value != lost.Value {
		t.Fatalf("Recover on first issue = %v, want the instance's key", err)
	}
	manual, _ := newProvider(t, fake, nil)
	if _, ok := manual.ForEngine().(provider.Recoverer); ok {
		t.Fatal("a manual-mode provider claims to recover: a mint hook's lost key would never be reported")
	}
}

// TestPlatformEngineResumesAfterTheRotateCall runs the rotation engine
// against the emulator and kills it (a panic at the engine's minted point)
// right after Clerk answered the rotate call: the next run recovers the key
// Clerk issued, with exactly one rotate call, nothing orphaned, and the old
// key still within its delay.
func TestPlatformEngineResumesAfterTheRotateCall(t *testing.T) {
	t.Parallel()
	fake := platformFake(t)
	f := newPlatform(t, fake, clerk.Platform{})
	ctx := t.Context()
	st := memstore.New()
	sec := rotation.Secret{Name: "clerk-secret-key", Provider: f.p.ForEngine(), Every: time.Hour, Grace: time.Hour, Lease: time.Minute}
	seed := &store.Secret{Name: sec.Name, Current: &store.Key{Value: fake.Key(), ID: "0123456789abcdef"}}
	if _, err := st.Save(ctx, seed, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	crashed := &rotation.Engine{Store: st, Salt: []byte("clerk-platform-test"), Initiator: "user:test", Holder: "gone:1:x",
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
	eng := &rotation.Engine{Store: st, Salt: crashed.Salt, Initiator: "user:test", HolderAlive: func(h string) bool { return h != crashed.Holder }}
	res, err := eng.Rotate(ctx, sec)
	noLeak(t, err, fake.Key(), platformToken)
	if err != nil || !res.Resumed {
		t.Fatalf("resumed rotation = %+v, %v", res, err)
	}
	s, _, _ := st.Load(ctx, sec.Name)
	rots := fake.PlatformRotations()
	if len(rots) != 1 || s.Current.Meta[clerk.MetaRecovered] != "true" || s.Previous == nil || s.Previous.Value != fake.Key() {
		t.Fatalf("rotate calls = %d, current meta %v: want one call and its key recovered over the original", len(rots), s.Current.Meta)
	}
	if len(s.Orphans) != 0 {
		t.Fatalf("orphans reported: %v", s.Orphans)
	}
	if !strings.Contains(rots[0].Reason, ", request "+res.Rotation+"-mint-") {
		t.Errorf("reason %q does not carry the request id", rots[0].Reason)
	}
	if !strings.Contains(rots[0].Reason, ", initiated by user:test") {
		t.Errorf("reason %q does not carry the initiator", rots[0].Reason)
	}
	for _, k := range []string{s.Current.Value, s.Previous.Value} {
		if err := f.p.Test(ctx, k); err != nil {
			t.Fatalf("a key does not work after the resumed rotation: %v", err)
		}
	}
}
