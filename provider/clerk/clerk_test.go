package clerk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
	"github.com/rotor-dev/rotor/internal/exectest"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/store"
)

// TestMain lets the test binary stand in for a revoke hook that deletes a
// key through the fake's admin API, as an organisation's tooling would
// through whatever it has.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "revoke-hook" {
		os.Exit(revokeHook(os.Args[2]))
	}
	os.Exit(m.Run())
}

func revokeHook(fakeURL string) int {
	var req struct {
		Version int    `json:"version"`
		Action  string `json:"action"`
		Secret  string `json:"secret"`
		KeyID   string `json:"key_id"`
		Name    string `json:"dashboard_name"`
		Value   string `json:"value"`
	}
	dec := json.NewDecoder(os.Stdin)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || req.Version != 1 || req.Action != "revoke" || req.Value == "" {
		fmt.Fprintln(os.Stderr, "bad request on stdin")
		return 2
	}
	if os.Getenv("ROTOR_KEY_ID") != req.KeyID || strings.Contains(strings.Join(os.Environ(), "\n"), req.Value) {
		fmt.Fprintln(os.Stderr, "environment does not match the request, or holds the key")
		return 2
	}
	body, _ := json.Marshal(map[string]string{"secret": req.Value})
	r, _ := http.NewRequest(http.MethodDelete, fakeURL+"/_admin/keys", strings.NewReader(string(body)))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		fmt.Fprintln(os.Stderr, "delete answered", resp.Status)
		return 1
	}
	return 0
}

// waits records the retry waits instead of sleeping.
type waits struct {
	mu sync.Mutex
	d  []time.Duration
}

func (w *waits) wait(_ context.Context, d time.Duration) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.d = append(w.d, d)
	return nil
}

func (w *waits) all() []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Duration(nil), w.d...)
}

var fixedNow = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)

func newProvider(t *testing.T, fake *clerkfake.Server, cfg *clerk.Options) (*clerk.Provider, *waits) {
	t.Helper()
	if cfg == nil {
		cfg = &clerk.Options{}
	}
	cfg.APIURL = fake.URL()
	w := &waits{}
	p, err := clerk.New("clerk-secret-key", *cfg,
		clerk.WithHTTPClient(fake.Client()),
		clerk.WithRetryWait(w.wait),
		clerk.WithClock(func() time.Time { return fixedNow }))
	if err != nil {
		t.Fatal(err)
	}
	return p, w
}

// errText is everything an error would show an operator.
func errText(err error) string {
	if err == nil {
		return ""
	}
	s := fmt.Sprintf("%v %+v %#v", err, err, err.Error())
	var ar *provider.ActionRequiredError
	if errors.As(err, &ar) {
		s += "\n" + ar.Action + "\n" + strings.Join(ar.Steps, "\n")
	}
	return s
}

// noLeak fails the test if any secret value, or its last 8 characters,
// shows in err.
func noLeak(t *testing.T, err error, secrets ...string) {
	t.Helper()
	text := errText(err)
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(text, s) || len(s) > 16 && strings.Contains(text, s[len(s)-8:]) {
			t.Fatalf("error text leaks a secret value: %s", text)
		}
	}
}

func TestTestAcceptsEveryActiveKey(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, nil)
	second := fake.AddKey()
	for _, k := range []string{fake.Key(), second} {
		if err := p.Test(t.Context(), k); err != nil {
			noLeak(t, err, k)
			t.Fatalf("Test(active key) = %v", err)
		}
	}
	if got := fake.Requests("GET /v1/jwks"); got != 2 {
		t.Errorf("GET /v1/jwks requests = %d, want 2", got)
	}
}

func TestTestRejectsDeletedKey(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, clerkfake.Live())
	p, w := newProvider(t, fake, nil)
	k := fake.AddKey()
	fake.DeleteKey(k)
	err := p.Test(t.Context(), k)
	if !errors.Is(err, provider.ErrRejected) {
		t.Fatalf("Test(deleted key) = %v, want ErrRejected", err)
	}
	noLeak(t, err, k, fake.Key())
	if !strings.Contains(err.Error(), "clerk_key_invalid") {
		t.Errorf("error %q does not name Clerk's error code", err)
	}
	if n := len(w.all()); n != 0 {
		t.Errorf("a 401 was retried %d times; it is a definite answer", n)
	}
}

func TestTestRetries(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		reason     string
		fail       int
		status     int
		retryAfter time.Duration
		wantErr    bool
		wantWaits  []time.Duration // nil: only count
		wantCalls  int
	}{
		"429 then 200": {
			reason: "rate limits pass", fail: 2, status: http.StatusTooManyRequests, wantCalls: 3,
		},
		"503 then 200": {
			reason: "a 5xx on a read is retried", fail: 1, status: http.StatusServiceUnavailable, wantCalls: 2,
		},
		"Retry-After honoured": {
			reason: "the server says how long to wait", fail: 2, status: http.StatusTooManyRequests,
			retryAfter: 3 * time.Second, wantWaits: []time.Duration{3 * time.Second, 3 * time.Second}, wantCalls: 3,
		},
		"persistent 503": {
			reason: "bounded: give up after 4 attempts with an unknown answer", fail: 10, status: http.StatusServiceUnavailable,
			wantErr: true, wantCalls: 4,
		},
		"persistent 500": {
			reason: "bounded", fail: 10, status: http.StatusInternalServerError, wantErr: true, wantCalls: 4,
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fake := clerkfake.New(t)
			p, w := newProvider(t, fake, nil)
			fake.FailNextRetryAfter(tt.fail, tt.status, tt.retryAfter)
			err := p.Test(t.Context(), fake.Key())
			noLeak(t, err, fake.Key())
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("Test = nil, want an error (%s)", tt.reason)
			case tt.wantErr && errors.Is(err, provider.ErrRejected):
				t.Fatalf("Test = %v wraps ErrRejected; a %d is not a definite answer", err, tt.status)
			case !tt.wantErr && err != nil:
				t.Fatalf("Test = %v, want nil (%s)", err, tt.reason)
			}
			if got := fake.Requests("GET /v1/jwks"); got != tt.wantCalls {
				t.Errorf("requests = %d, want %d (%s)", got, tt.wantCalls, tt.reason)
			}
			got := w.all()
			if len(got) != tt.wantCalls-1 {
				t.Errorf("waited %d times, want %d", len(got), tt.wantCalls-1)
			}
			if tt.wantWaits != nil && fmt.Sprint(got) != fmt.Sprint(tt.wantWaits) {
				t.Errorf("waits = %v, want %v", got, tt.wantWaits)
			}
			for _, d := range got {
				if d <= 0 || d > 10*time.Second {
					t.Errorf("wait %s out of bounds", d)
				}
			}
		})
	}
}

func TestTestTimesOut(t *testing.T) {
	t.Parallel()
	block := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	})}
	fake := clerkfake.New(t) // for its key format only
	ln := listen(t)
	go srv.Serve(ln)
	t.Cleanup(func() { close(block); srv.Close() })
	p, err := clerk.New("clerk-secret-key", clerk.Options{APIURL: "http://" + ln.Addr().String(), Timeout: 50 * time.Millisecond},
		clerk.WithRetryWait((&waits{}).wait), clerk.WithMaxAttempts(2))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Test(t.Context(), fake.Key())
	if err == nil || errors.Is(err, provider.ErrRejected) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Test against a silent server = %v, want a timeout that is not ErrRejected", err)
	}
	if !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("error %q does not say it retried", err)
	}
	noLeak(t, err, fake.Key())
}

func TestFormatRefusedWithoutCallingClerk(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, nil)
	good := fake.Key()
	tests := map[string]struct {
		value, want string
	}{
		"empty":            {"", "sk_live_ or sk_test_"},
		"publishable key":  {"pk_test_" + good[8:], "publishable"},
		"other prefix":     {"sk_prod_" + good[8:], "sk_live_ or sk_test_"},
		"trailing newline": {good + "\n", "whitespace"},
		"truncated":        {good[:12], "malformed"},
		"inner space":      {good[:20] + " " + good[20:], "malformed"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := p.Test(t.Context(), tt.value)
			if !errors.Is(err, provider.ErrRejected) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Test = %v, want ErrRejected mentioning %q", err, tt.want)
			}
			noLeak(t, err, tt.value, good)
			if err := p.CheckPromote(nil, tt.value); err == nil {
				t.Errorf("CheckPromote accepted a malformed key")
			}
		})
	}
	if n := fake.Requests("GET /v1/jwks"); n != 0 {
		t.Errorf("malformed keys were sent to Clerk (%d requests)", n)
	}
}

func TestCheckPromote(t *testing.T) {
	t.Parallel()
	live := clerkfake.New(t, clerkfake.Live())
	dev := clerkfake.New(t)
	liveKey, testKey := live.Key(), dev.Key()
	liveCur := &store.Key{Value: liveKey, ID: "kid-live"}
	testCur := &store.Key{Value: testKey, ID: "kid-test"}
	tests := map[string]struct {
		current   *store.Key
		candidate string
		env       string
		want      string // "" = accepted
	}{
		"test over live":         {liveCur, testKey, "", "refusing to promote a test key (sk_test_) over the current live key kid-live"},
		"live over test":         {testCur, liveKey, "", "refusing to promote a live key (sk_live_) over the current test key kid-test"},
		"live over live":         {liveCur, live.AddKey(), "", ""},
		"test over test":         {testCur, dev.AddKey(), "", ""},
		"first key":              {nil, testKey, "", ""},
		"same key":               {liveCur, liveKey, "", "is the current key kid-live"},
		"pinned live, first key": {nil, testKey, "live", "pins environment live"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, _ := newProvider(t, dev, &clerk.Options{Environment: tt.env})
			err := p.CheckPromote(tt.current.Clone(), tt.candidate)
			noLeak(t, err, liveKey, testKey, tt.candidate)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("CheckPromote = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckPromote = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(name, "over") && !errors.Is(err, clerk.ErrEnvironmentMismatch) {
				t.Errorf("error does not wrap ErrEnvironmentMismatch")
			}
		})
	}
}

func TestMintWithoutHookAsksTheOperator(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t, clerkfake.Live())
	p, _ := newProvider(t, fake, nil)
	cur := &store.Key{Value: fake.Key(), ID: "kid-1"}
	_, err := p.Mint(t.Context(), provider.MintRequest{Secret: "clerk-secret-key", Current: cur, Grace: 24 * time.Hour})
	var ar *provider.ActionRequiredError
	if !errors.As(err, &ar) || !errors.Is(err, provider.ErrCannotMint) {
		t.Fatalf("Mint = %v, want *provider.ActionRequiredError", err)
	}
	noLeak(t, err, fake.Key())
	text := errText(err)
	for _, want := range []string{
		`"rotor-2025-06-01"`,
		"API keys → Secret keys → Add new key",
		"production instance",
		"rotor stage clerk-secret-key --from-stdin",
		"rotor rotate clerk-secret-key",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
	if fake.KeyCount() != 1 {
		t.Errorf("Mint changed the instance's keys")
	}
}

func TestDashboardNameTemplate(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, &clerk.Options{DashboardName: "{secret}-{date}"})
	_, err := p.Mint(t.Context(), provider.MintRequest{Secret: "clerk-secret-key"})
	if !strings.Contains(errText(err), `"clerk-secret-key-2025-06-01"`) {
		t.Fatalf("instructions do not use the template: %s", errText(err))
	}
}

// writeScript writes a hook for the provider to execute (see
// [exectest.Script] for why tests write scripts only through it).
func writeScript(t *testing.T, body string) string {
	t.Helper()
	return exectest.Script(t, "hook.sh", body)
}

func TestMintHook(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	newKey := fake.AddKey()
	keyFile := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(keyFile, []byte(newKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := filepath.Join(t.TempDir(), "seen")
	tests := map[string]struct {
		script  string
		wantErr string
	}{
		"prints the key": {
			script: fmt.Sprintf("echo \"$ROTOR_DASHBOARD_NAME\" > %s\ncat > /dev/null\ncat %s\n", seen, keyFile),
		},
		"prints garbage": {
			script:  "echo not-a-key\n",
			wantErr: "not a Clerk secret key",
		},
		"prints two lines": {
			script:  fmt.Sprintf("cat %s %s\n", keyFile, keyFile),
			wantErr: "several lines",
		},
		"fails": {
			script:  fmt.Sprintf("echo \"could not create $(cat %s)\" >&2\nexit 3\n", keyFile),
			wantErr: "exit status 3",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			hook := &clerk.Hook{Command: []string{writeScript(t, tt.script)}, Timeout: 10 * time.Second}
			p, _ := newProvider(t, fake, &clerk.Options{Mint: hook})
			cred, err := p.Mint(t.Context(), provider.MintRequest{Secret: "clerk-secret-key"})
			noLeak(t, err, newKey, fake.Key())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Mint = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cred.Value != newKey || cred.Meta[clerk.MetaDashboardName] != "rotor-2025-06-01" {
				t.Fatalf("Mint returned a different key or meta %v", cred.Meta)
			}
			if b, _ := os.ReadFile(seen); strings.TrimSpace(string(b)) != "rotor-2025-06-01" {
				t.Errorf("hook saw ROTOR_DASHBOARD_NAME=%q", b)
			}
			if err := p.Test(t.Context(), cred.Value); err != nil {
				t.Errorf("minted key does not test: %v", err)
			}
		})
	}
}

func TestRevokeTwoPhase(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, nil)
	_, old := fake.AddNamedKey("rotor-2025-05-01")
	key := store.Key{Value: old, ID: "kid-old", CreatedAt: fixedNow.Add(-31 * 24 * time.Hour),
		Meta: map[string]string{clerk.MetaDashboardName: "rotor-2025-05-01"}}

	err := p.Revoke(t.Context(), key)
	var ar *provider.ActionRequiredError
	if !errors.As(err, &ar) {
		t.Fatalf("Revoke(active key) = %v, want *provider.ActionRequiredError", err)
	}
	noLeak(t, err, old, fake.Key())
	text := errText(err)
	for _, want := range []string{"kid-old", `"rotor-2025-05-01"`, "API keys → Secret keys", "rotor revoke clerk-secret-key again"} {
		if !strings.Contains(text, want) {
			t.Errorf("instructions lack %q:\n%s", want, text)
		}
	}
	if fake.KeyName(old) == "" {
		t.Fatal("Revoke deleted the key itself; Clerk has no API for that")
	}

	fake.DeleteKey(old) // the operator, in the Dashboard
	for i := range 2 {
		if err := p.Revoke(t.Context(), key); err != nil {
			t.Fatalf("Revoke #%d after deletion = %v, want nil", i+1, err)
		}
	}
}

func TestRevokeWithoutDashboardName(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, nil)
	key := store.Key{Value: fake.AddKey(), ID: "kid-x", CreatedAt: fixedNow}
	err := p.Revoke(t.Context(), key)
	noLeak(t, err, key.Value)
	text := errText(err)
	if !strings.Contains(text, "kid-x") || !strings.Contains(text, "2025-06-01") || !strings.Contains(text, "rotor status clerk-secret-key") {
		t.Fatalf("instructions do not help find an unnamed key:\n%s", text)
	}
	// The Dashboard lists keys by their start and end (Clerk changelog
	// 2026-10-19): the hint names both, and nothing more of the key.
	if want := "sk_test_…" + key.Value[len(key.Value)-4:]; !strings.Contains(text, want) {
		t.Fatalf("instructions do not show the key as the Dashboard lists it (%s):\n%s", want, text)
	}
	if strings.Contains(text, key.Value[len(key.Value)-5:]) {
		t.Fatal("more than the last four characters of the key are shown")
	}
}

func TestDashboardHint(t *testing.T) {
	t.Parallel()
	for value, want := range map[string]string{
		"sk_live_" + strings.Repeat("a", 36) + "Wx3Q": "sk_live_…Wx3Q",
		"sk_test_" + strings.Repeat("b", 36) + "zz_9": "sk_test_…zz_9",
		"pk_live_abcdefghijklmnopqrstuvwxyz":          "",
		"not a key":                                   "",
	} {
		if got := clerk.DashboardHint(value); got != want {
			t.Errorf("DashboardHint(%.10s…) = %q, want %q", value, got, want)
		}
	}
}

func TestRevokeUnknownAnswerIsNotConfirmation(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	p, _ := newProvider(t, fake, nil)
	key := store.Key{Value: fake.AddKey(), ID: "kid-y"}
	fake.FailNext(10, http.StatusServiceUnavailable)
	err := p.Revoke(t.Context(), key)
	var ar *provider.ActionRequiredError
	if err == nil || errors.As(err, &ar) {
		t.Fatalf("Revoke during an outage = %v, want a plain error", err)
	}
	noLeak(t, err, key.Value)
}

func TestRevokeHook(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		argv    []string
		wantErr string
	}{
		"deletes the key": {argv: []string{self, "revoke-hook", fake.URL()}},
		"claims success but does nothing": {
			argv:    []string{writeScript(t, "cat > /dev/null\n")},
			wantErr: "still accepts the key",
		},
		"fails and prints the key": {
			argv:    []string{writeScript(t, "cat >&2\nexit 1\n")},
			wantErr: "exit status 1",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			value := fake.AddKey()
			key := store.Key{Value: value, ID: "kid-" + name}
			hook := &clerk.Hook{Command: tt.argv, Timeout: 20 * time.Second}
			p, _ := newProvider(t, fake, &clerk.Options{Revoke: hook})
			err := p.Revoke(t.Context(), key)
			noLeak(t, err, value, fake.Key())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Revoke = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Revoke = %v", err)
			}
			if fake.KeyName(value) != "" {
				t.Fatal("key still active after the hook")
			}
			// Idempotent: the hook is not run again for a deleted key.
			if err := p.Revoke(t.Context(), key); err != nil {
				t.Fatalf("second Revoke = %v", err)
			}
		})
	}
}
