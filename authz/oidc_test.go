package authz

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor/authz/authztest"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var testRules = []OIDCRule{
	{Repository: "org/app", Ref: "refs/heads/main", Role: RoleCI, Secrets: []string{"clerk"}},
	{Repository: "org/app", Environment: "production", Role: RoleAdmin},
	{Repository: "org/other", Ref: "refs/tags/v*", Role: RoleViewer},
}

func newVerifier(t *testing.T, iss *authztest.Issuer, clock *fakeClock, mod func(*OIDCConfig)) *OIDCVerifier {
	t.Helper()
	cfg := OIDCConfig{Issuer: iss.URL(), Audience: "rotor", Rules: testRules, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	v, err := NewOIDCVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newIssuer(t *testing.T, clock *fakeClock) *authztest.Issuer {
	iss := authztest.NewIssuer(t)
	iss.Now = clock.Now
	return iss
}

func TestOIDCValidToken(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, nil)
	p, err := v.Authenticate(t.Context(), iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main")))
	if err != nil {
		t.Fatal(err)
	}
	want := "ci:github:org/app:rotate#1234567890"
	if p.Subject != want || p.Role != RoleCI || len(p.Secrets) != 1 || p.Secrets[0] != "clerk" {
		t.Fatalf("principal = %+v, want subject %s, role ci, secrets [clerk]", p, want)
	}
}

func TestOIDCRS256(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	iss.AddKey(t, jose.RS256, true)
	v := newVerifier(t, iss, clock, nil)
	if _, err := v.Authenticate(t.Context(), iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))); err != nil {
		t.Fatal(err)
	}
}

func TestOIDCRules(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, nil)
	tests := []struct {
		name    string
		mod     func(c map[string]any)
		role    Role
		secrets int
		reason  string
	}{
		{"main branch", func(map[string]any) {}, RoleCI, 1, "first rule"},
		{"production environment", func(c map[string]any) { c["ref"] = "refs/heads/dev"; c["environment"] = "production" }, RoleAdmin, 0, "second rule"},
		{"first match wins", func(c map[string]any) { c["environment"] = "production" }, RoleCI, 1, "main matches rule 1 before rule 2"},
		{"tag glob", func(c map[string]any) { c["repository"] = "org/other"; c["ref"] = "refs/tags/v1.2.3" }, RoleViewer, 0, "rule with a ref pattern"},
		{"glob does not cross slash", func(c map[string]any) { c["repository"] = "org/other"; c["ref"] = "refs/tags/v1/x" }, "", 0, "path.Match semantics"},
		{"other branch", func(c map[string]any) { c["ref"] = "refs/heads/dev" }, "", 0, "no rule matches"},
		{"other repository", func(c map[string]any) { c["repository"] = "evil/app"; c["repository_owner"] = "evil" }, "", 0, "no rule matches"},
		{"case differs", func(c map[string]any) { c["repository"] = "Org/App" }, "", 0, "exact match"},
		{"missing claim", func(c map[string]any) { delete(c, "repository") }, "", 0, "an absent claim matches nothing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := iss.GitHubClaims("rotor", "org/app", "refs/heads/main")
			tt.mod(c)
			p, err := v.Authenticate(t.Context(), iss.Sign(t, c))
			if err != nil {
				t.Fatal(err)
			}
			if p.Role != tt.role || len(p.Secrets) != tt.secrets {
				t.Fatalf("role %q with %d secrets, want %q with %d (%s)", p.Role, len(p.Secrets), tt.role, tt.secrets, tt.reason)
			}
			if p.Subject == "" {
				t.Fatal("an authenticated principal always has a subject")
			}
		})
	}
}

func TestOIDCSubject(t *testing.T) {
	tests := []struct {
		name string
		c    oidcClaims
		want string
	}{
		{"workflow", oidcClaims{Repository: "o/r", Workflow: "ci", JobWorkflowRef: "o/r/.github/workflows/ci.yml@refs/heads/main", RunID: "7"}, "ci:github:o/r:ci#7"},
		{"job workflow ref", oidcClaims{Repository: "o/r", JobWorkflowRef: "o/r/.github/workflows/ci.yml@refs/heads/main", RunID: "7"}, "ci:github:o/r:o/r/.github/workflows/ci.yml@refs/heads/main#7"},
		{"no run id", oidcClaims{Repository: "o/r", Workflow: "ci"}, "ci:github:o/r:ci"},
		{"not github", oidcClaims{Subject: "system:serviceaccount:x"}, "oidc:system:serviceaccount:x"},
		{"long", oidcClaims{Subject: strings.Repeat("é", 400)}, "oidc:" + strings.Repeat("é", 253) + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.auditSubject(); got != tt.want {
				t.Fatalf("auditSubject = %q, want %q", got, tt.want)
			}
		})
	}
}

// unsigned builds a compact JWS with the given header and claims and a
// signature made by sign (nil: empty signature).
func unsigned(t *testing.T, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestOIDCRejects(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, nil)
	good := func() map[string]any { return iss.GitHubClaims("rotor", "org/app", "refs/heads/main") }
	with := func(k string, val any) map[string]any {
		c := good()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	kid := iss.JWKS().Keys[0].KeyID
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(iss.JWKS().Keys[0].Key)
	now := clock.Now()

	tests := []struct {
		name    string
		token   string
		want    string // substring of the error
		noMatch bool
	}{
		{"wrong audience", iss.Sign(t, with("aud", "https://github.com/org")), "audience", false},
		{"audience list without ours", iss.Sign(t, with("aud", []string{"a", "b"})), "audience", false},
		{"wrong issuer", iss.Sign(t, with("iss", "https://token.actions.githubusercontent.com")), "not trusted", true},
		{"issuer with trailing slash", iss.Sign(t, with("iss", iss.URL()+"/")), "not trusted", true},
		{"expired", iss.Sign(t, with("exp", now.Add(-2*time.Minute).Unix())), "expired", false},
		{"no expiry", iss.Sign(t, with("exp", nil)), "no expiry", false},
		{"not yet valid", iss.Sign(t, with("nbf", now.Add(2*time.Minute).Unix())), "not valid before", false},
		{"issued in the future", iss.Sign(t, with("iat", now.Add(2*time.Minute).Unix())), "future", false},
		{"bad signature", authztest.SignWith(t, jose.ES256, otherKey, kid, good()), "bad signature", false},
		{"tampered claims", func() string {
			parts := strings.Split(iss.Sign(t, good()), ".")
			c, _ := json.Marshal(with("repository", "org/app2"))
			parts[1] = base64.RawURLEncoding.EncodeToString(c)
			return strings.Join(parts, ".")
		}(), "bad signature", false},
		{"unknown kid", authztest.SignWith(t, jose.ES256, otherKey, "nobody", good()), "unknown signing key", false},
		{"alg none", unsigned(t, map[string]any{"alg": "none", "kid": kid}, good(), nil), "algorithm", false},
		{"alg HS256 keyed with the public key", unsigned(t, map[string]any{"alg": "HS256", "kid": kid}, good(), func(in []byte) []byte {
			m := hmac.New(sha256.New, pubDER)
			m.Write(in)
			return m.Sum(nil)
		}), "algorithm", false},
		{"RS256 header on an EC key", unsigned(t, map[string]any{"alg": "RS256", "kid": kid}, good(), func([]byte) []byte { return make([]byte, 256) }), "unknown signing key", false},
		{"not a JWT", "rtr_sometoken", "not a JWT", true},
		{"garbage JWT", "eyJhbGciOiJFUzI1NiJ9.!!!.x", "malformed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Authenticate(t.Context(), tt.token)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrNoMatch) != tt.noMatch || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v (no match %v), want unauthenticated containing %q (no match %v)", err, errors.Is(err, ErrNoMatch), tt.want, tt.noMatch)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Fatal("error repeats the token")
			}
		})
	}
}

func TestOIDCClockSkew(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.ClockSkew = 30 * time.Second })
	tok := iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	clock.Advance(5*time.Minute + 20*time.Second)
	if _, err := v.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("20s past expiry, within 30s skew: %v", err)
	}
	clock.Advance(20 * time.Second)
	if _, err := v.Authenticate(t.Context(), tok); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("40s past expiry: %v", err)
	}
}

func TestOIDCKeyRotation(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.MinRefreshInterval = time.Minute })
	claims := func() map[string]any { return iss.GitHubClaims("rotor", "org/app", "refs/heads/main") }

	if _, err := v.Authenticate(t.Context(), iss.Sign(t, claims())); err != nil {
		t.Fatal(err)
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches after the first token, want 1", n)
	}
	// Cached: a second token costs no fetch.
	if _, err := v.Authenticate(t.Context(), iss.Sign(t, claims())); err != nil || iss.JWKSFetches() != 1 {
		t.Fatalf("second token: %v, %d fetches", err, iss.JWKSFetches())
	}

	// The issuer starts signing with a new key. Within MinRefreshInterval
	// of the last fetch, an unknown kid does not cause a fetch...
	kid := iss.AddKey(t, jose.ES256, true)
	tok := iss.Sign(t, claims())
	if _, err := v.Authenticate(t.Context(), tok); err == nil || !strings.Contains(err.Error(), kid) {
		t.Fatalf("unknown kid inside the refresh interval: %v", err)
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches, want 1: unknown kids must not make the verifier hammer the issuer", n)
	}
	// ...after it, the unknown kid triggers one refresh and verifies.
	clock.Advance(time.Minute)
	if _, err := v.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("unknown kid after the interval: %v", err)
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
	// A kid the issuer never publishes fails without hammering.
	iss.AddKey(t, jose.ES256, false)
	for range 3 {
		if _, err := v.Authenticate(t.Context(), iss.Sign(t, claims())); err == nil {
			t.Fatal("unpublished key accepted")
		}
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches after unpublished kids, want 2", n)
	}
}

func TestOIDCCacheTTL(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.CacheTTL = time.Hour })
	tok := func() string { return iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main")) }
	if _, err := v.Authenticate(t.Context(), tok()); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := v.Authenticate(t.Context(), tok()); err != nil {
		t.Fatal(err)
	}
	if n := iss.JWKSFetches(); n != 2 {
		t.Fatalf("%d fetches, want a refetch after the TTL", n)
	}
}

func TestOIDCDiscoveryIssuerMismatch(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	iss.SetDiscoveryIssuer("https://evil.example")
	v := newVerifier(t, iss, clock, nil)
	_, err := v.Authenticate(t.Context(), iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main")))
	if err == nil || !strings.Contains(err.Error(), "discovery") {
		t.Fatalf("err = %v, want a discovery error", err)
	}
}

func TestOIDCIssuerDown(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	var down atomic.Bool
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		json.NewEncoder(w).Encode(iss.JWKS())
	}))
	t.Cleanup(jwks.Close)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = jwks.URL; c.CacheTTL = time.Hour })
	tok := func() string { return iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main")) }
	if _, err := v.Authenticate(t.Context(), tok()); err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	clock.Advance(2 * time.Hour)
	if _, err := v.Authenticate(t.Context(), tok()); err != nil {
		t.Fatalf("stale keys must keep working while the issuer is down: %v", err)
	}

	v2 := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = jwks.URL })
	if _, err := v2.Authenticate(t.Context(), tok()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("no keys at all: %v", err)
	}
}

func TestOIDCConcurrentFetch(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	v := newVerifier(t, iss, clock, nil)
	tok := iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := v.Authenticate(t.Context(), tok)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := iss.JWKSFetches(); n != 1 {
		t.Fatalf("%d fetches for concurrent first tokens, want 1", n)
	}
}

func TestOIDCSkipsUnusableKeys(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good, _ := json.Marshal(iss.JWKS().Keys[0])
		w.Write([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"hmac"},{"kty":"weird"},` + string(good) + `]}`))
	}))
	t.Cleanup(srv.Close)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = srv.URL })
	if _, err := v.Authenticate(t.Context(), iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))); err != nil {
		t.Fatal(err)
	}
	if ks := v.keys.find("hmac", "HS256"); len(ks) != 0 {
		t.Fatal("a symmetric key was kept")
	}
}

func TestOIDCConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  OIDCConfig
		want string
	}{
		{"no audience", OIDCConfig{}, "audience"},
		{"http issuer", OIDCConfig{Issuer: "http://issuer.example", Audience: "a"}, "https"},
		{"relative jwks", OIDCConfig{Audience: "a", JWKSURL: "/jwks"}, "absolute"},
		{"rule without repository", OIDCConfig{Audience: "a", Rules: []OIDCRule{{Ref: "refs/heads/main", Role: RoleCI}}}, "any GitHub repository"},
		{"rule with wildcard sub only", OIDCConfig{Audience: "a", Rules: []OIDCRule{{Subject: "*", Role: RoleCI}}}, "repo:OWNER/NAME"},
		{"bad pattern", OIDCConfig{Audience: "a", Rules: []OIDCRule{{Repository: "o/r", Ref: "refs/[", Role: RoleCI}}}, "pattern"},
		{"bad role", OIDCConfig{Audience: "a", Rules: []OIDCRule{{Repository: "o/r", Role: "god"}}}, "unknown role"},
		{"app without secrets", OIDCConfig{Audience: "a", Rules: []OIDCRule{{Repository: "o/r", Role: RoleApp}}}, "needs the secrets"},
		{"negative skew", OIDCConfig{Audience: "a", ClockSkew: -time.Second}, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewOIDCVerifier(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	v, err := NewOIDCVerifier(OIDCConfig{Audience: "rotor"})
	if err != nil || v.cfg.Issuer != GitHubIssuer {
		t.Fatalf("default issuer: %v, %v", v, err)
	}
}

// FuzzOIDCAuthenticate feeds arbitrary bearer tokens to a verifier: none
// may authenticate, and none may make it panic.
func FuzzOIDCAuthenticate(f *testing.F) {
	clock := newFakeClock()
	iss := authztest.NewIssuer(f)
	iss.Now = clock.Now
	v, err := NewOIDCVerifier(OIDCConfig{Issuer: iss.URL(), Audience: "rotor", Rules: testRules, Now: clock.Now})
	if err != nil {
		f.Fatal(err)
	}
	good := iss.Sign(f, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	if _, err := v.Authenticate(f.Context(), good); err != nil {
		f.Fatal(err)
	}
	f.Add(good[:len(good)-2])
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("....")
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == good {
			return
		}
		if p, err := v.Authenticate(t.Context(), tok); err == nil {
			t.Fatalf("fuzzed token authenticated as %+v", p)
		}
	})
}

// jwksServer serves whatever key set set holds, and counts requests.
func jwksServer(t *testing.T, set *atomic.Pointer[jose.JSONWebKeySet]) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(set.Load())
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestOIDCRefusesSmallRSAKeys(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	var set atomic.Pointer[jose.JSONWebKeySet]
	set.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		iss.JWKS().Keys[0],
		{Key: &small.PublicKey, KeyID: "small", Algorithm: string(jose.RS256), Use: "sig"},
	}})
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = jwksServer(t, &set).URL })
	tok := authztest.SignWith(t, jose.RS256, small, "small", iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	if _, err := v.Authenticate(t.Context(), tok); err == nil || !strings.Contains(err.Error(), "unknown signing key") {
		t.Fatalf("token signed by a 1024-bit RSA key: %v, want unknown signing key", err)
	}
	// Without the kid, no published key may verify it either.
	noKid := authztest.SignWith(t, jose.RS256, small, "", iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	if _, err := v.Authenticate(t.Context(), noKid); err == nil {
		t.Fatal("token without kid signed by a 1024-bit RSA key accepted")
	}
}

func TestOIDCWithdrawnKeyExpiresWithTTL(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	keyA, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keyB, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubA := jose.JSONWebKey{Key: &keyA.PublicKey, KeyID: "a", Algorithm: string(jose.ES256), Use: "sig"}
	pubB := jose.JSONWebKey{Key: &keyB.PublicKey, KeyID: "b", Algorithm: string(jose.ES256), Use: "sig"}
	var set atomic.Pointer[jose.JSONWebKeySet]
	set.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pubA, pubB}})
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = jwksServer(t, &set).URL; c.CacheTTL = time.Hour })
	sign := func(key *ecdsa.PrivateKey, kid string) string {
		return authztest.SignWith(t, jose.ES256, key, kid, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
	}
	if _, err := v.Authenticate(t.Context(), sign(keyA, "a")); err != nil {
		t.Fatal(err)
	}
	// The issuer withdraws key a (say it leaked).
	set.Store(&jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pubB}})
	clock.Advance(59 * time.Minute)
	if _, err := v.Authenticate(t.Context(), sign(keyA, "a")); err != nil {
		t.Fatalf("within the TTL the cached key still verifies: %v", err)
	}
	clock.Advance(time.Minute)
	if _, err := v.Authenticate(t.Context(), sign(keyA, "a")); err == nil || !strings.Contains(err.Error(), "unknown signing key") {
		t.Fatalf("withdrawn key after the TTL: %v, want unknown signing key", err)
	}
	if _, err := v.Authenticate(t.Context(), sign(keyB, "b")); err != nil {
		t.Fatalf("the remaining key: %v", err)
	}
}

func TestOIDCDocumentSizeBound(t *testing.T) {
	clock := newFakeClock()
	iss := newIssuer(t, clock)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		good, _ := json.Marshal(iss.JWKS().Keys[0])
		w.Write([]byte(`{"keys":[` + string(good) + `],"padding":"` + strings.Repeat("x", maxDocumentSize) + `"}`))
	}))
	t.Cleanup(srv.Close)
	v := newVerifier(t, iss, clock, func(c *OIDCConfig) { c.JWKSURL = srv.URL })
	_, err := v.Authenticate(t.Context(), iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main")))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("key set over the size bound: %v, want an error saying so", err)
	}
}
