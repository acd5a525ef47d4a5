package clerkfake_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

func call(t *testing.T, s *clerkfake.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestInstanceKeys(t *testing.T) {
	t.Parallel()
	live := clerkfake.New(t, clerkfake.Live())
	if !strings.HasPrefix(live.Key(), "sk_live_") || !strings.HasPrefix(clerkfake.New(t).Key(), "sk_test_") {
		t.Fatal("key prefixes do not follow the environment")
	}
	second := live.AddKey()
	for _, k := range []string{live.Key(), second} {
		if st, body := call(t, live, "GET", "/v1/jwks", k, ""); st != 200 || body["keys"] == nil {
			t.Fatalf("jwks with an active key = %d %v", st, body)
		}
	}
	// The admin API stands in for the Dashboard.
	st, created := call(t, live, "POST", "/_admin/keys", "", `{"name":"rotor-2025-06-01"}`)
	v, _ := created["secret"].(string)
	if st != 201 || created["name"] != "rotor-2025-06-01" || live.KeyName(v) != "rotor-2025-06-01" {
		t.Fatalf("admin add = %d %v", st, created)
	}
	if st, _ := call(t, live, "DELETE", "/_admin/keys", "", `{"secret":"`+v+`"}`); st != 204 {
		t.Fatalf("admin delete = %d", st)
	}
	if st, _ := call(t, live, "DELETE", "/_admin/keys", "", `{"secret":"`+v+`"}`); st != 404 {
		t.Fatalf("admin delete of a deleted key = %d, want 404", st)
	}
	live.DeleteKey(second)
	st, body := call(t, live, "GET", "/v1/jwks", second, "")
	errs, _ := body["errors"].([]any)
	if st != 401 || len(errs) != 1 || errs[0].(map[string]any)["code"] != "clerk_key_invalid" {
		t.Fatalf("jwks with a deleted key = %d %v", st, body)
	}
	if live.KeyCount() != 1 || live.Requests("GET /v1/jwks") != 3 {
		t.Fatalf("KeyCount = %d, jwks requests = %d", live.KeyCount(), live.Requests("GET /v1/jwks"))
	}
}

func TestUsers(t *testing.T) {
	t.Parallel()
	s := clerkfake.New(t)
	if st, body := call(t, s, "GET", "/v1/users/count", s.Key(), ""); st != 200 || body["total_count"] != 3.0 {
		t.Fatalf("users/count = %d %v", st, body)
	}
}

func TestMachineRotation(t *testing.T) {
	t.Parallel()
	s := clerkfake.New(t)
	id, k0 := s.AddMachine("worker")
	rotate := func(ttl string) (int, string) {
		st, body := call(t, s, "POST", "/v1/machines/"+id+"/secret_key/rotate", s.Key(), `{"previous_token_ttl":`+ttl+`}`)
		v, _ := body["secret"].(string)
		return st, v
	}
	valid := func(k string) bool {
		st, _ := call(t, s, "GET", "/v1/m2m_tokens?subject="+id, k, "")
		return st == 200
	}
	if st, _ := rotate("28801"); st != 422 {
		t.Fatalf("previous_token_ttl 28801 = %d, want 422", st)
	}
	if st, _ := call(t, s, "POST", "/v1/machines/"+id+"/secret_key/rotate", k0, `{"previous_token_ttl":1}`); st != 401 {
		t.Fatalf("rotate with the machine key = %d, want 401", st)
	}
	st, k1 := rotate("60")
	if st != 200 || !valid(k0) || !valid(k1) || s.MachineSecret(id) != k1 {
		t.Fatalf("after rotate: %d, old valid %v, new valid %v", st, valid(k0), valid(k1))
	}
	_, k2 := rotate("60")
	if valid(k0) || !valid(k1) || !valid(k2) {
		t.Fatal("a second rotation must end the first previous key at once and keep one previous key")
	}
	s.Advance(time.Minute)
	if valid(k1) || !valid(k2) {
		t.Fatal("previous key outlived its ttl")
	}
	if n, ttl := s.Rotations(id); n != 2 || ttl != 60 {
		t.Fatalf("Rotations = %d, %d", n, ttl)
	}
	s.FailNextRetryAfter(1, 429, 2*time.Second)
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+"/v1/jwks", nil)
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" {
		t.Fatalf("injected failure = %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

// TestSessionTokens: a session token minted through the admin API is an
// RS256 JWT whose signature checks out against the key GET /v1/jwks
// serves, with the claims Clerk's session tokens carry.
func TestSessionTokens(t *testing.T) {
	t.Parallel()
	s := clerkfake.New(t)
	st, body := call(t, s, "POST", "/_admin/session_tokens", "", `{"sub":"user_1","sid":"sess_1","ttl_seconds":60}`)
	tok, _ := body["jwt"].(string)
	if st != 201 || tok == "" {
		t.Fatalf("admin session token = %d %v", st, body)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.URL()+"/v1/jwks", nil)
	req.Header.Set("Authorization", "Bearer "+s.Key())
	resp, err := s.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %+v", err, set)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if kid := jws.Signatures[0].Header.KeyID; kid != set.Keys[0].KeyID {
		t.Fatalf("token kid %q, jwks kid %q", kid, set.Keys[0].KeyID)
	}
	payload, err := jws.Verify(set.Keys[0].Key)
	if err != nil {
		t.Fatalf("token does not verify against the JWKS: %v", err)
	}
	var claims struct {
		Sub, Sid, Iss string
		Exp, Iat      int64
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "user_1" || claims.Sid != "sess_1" || !strings.HasPrefix(claims.Iss, "https://clerk.") || claims.Exp-claims.Iat != 60 {
		t.Fatalf("claims %+v", claims)
	}
	if !strings.HasPrefix(s.PublishableKey(), "pk_test_") {
		t.Fatalf("publishable key %q", s.PublishableKey())
	}
}

// TestWithKeys: an instance started with given keys accepts exactly them.
func TestWithKeys(t *testing.T) {
	t.Parallel()
	a, b := "sk_test_seeded_one_0123456789", "sk_test_seeded_two_0123456789"
	s := clerkfake.New(t, clerkfake.WithKeys(a, b))
	if s.Key() != a || s.KeyCount() != 2 {
		t.Fatalf("Key() = first seeded key: %v, KeyCount = %d", s.Key() == a, s.KeyCount())
	}
	for _, k := range []string{a, b} {
		if st, _ := call(t, s, "GET", "/v1/users", k, ""); st != 200 {
			t.Fatalf("seeded key answered %d", st)
		}
	}
	if st, _ := call(t, s, "GET", "/v1/users", "sk_test_other", ""); st != 401 {
		t.Fatalf("unknown key answered %d, want 401", st)
	}
}

// TestPlatformAPI checks the emulator against Clerk's Platform API document
// (clerk/openapi-specs, platform/beta.yml) where the provider does not go:
// PlatformRotateSecretKeys (every instance), the token check, a body with a
// field the schema does not have (additionalProperties: false), and the
// admin clock that ends a deletion delay. The routes the provider uses are
// tested through it in provider/clerk.
func TestPlatformAPI(t *testing.T) {
	t.Parallel()
	const token = "platform-token-0123456789"
	s := clerkfake.New(t, clerkfake.WithPlatformToken(token), clerkfake.WithApplicationID("app_test"))
	old := s.Key()
	base := "/v1/platform/applications/app_test"
	if st, _ := call(t, s, "POST", base+"/rotate_secret_keys", "wrong", `{}`); st != 401 {
		t.Fatalf("wrong token = %d, want 401", st)
	}
	if st, _ := call(t, s, "POST", base+"/rotate_secret_keys", token, `{"delay_old_secrets_expiration_hours":1,"extra":true}`); st != 400 {
		t.Fatalf("unknown body field = %d, want 400", st)
	}
	if st, _ := call(t, s, "GET", "/v1/platform/applications/app_other", token, ""); st != 404 {
		t.Fatalf("unknown application = %d, want 404", st)
	}
	st, body := call(t, s, "POST", base+"/rotate_secret_keys", token, `{"delay_old_secrets_expiration_hours":1,"reason":"test"}`)
	insts, _ := body["instances"].([]any)
	if st != 200 || body["application_id"] != "app_test" || len(insts) != 1 {
		t.Fatalf("rotate all = %d %v", st, body)
	}
	in := insts[0].(map[string]any)
	newKey, _ := in["secret_key"].(string)
	if in["environment_type"] != "development" || in["instance_id"] != s.InstanceID() || !strings.HasPrefix(newKey, "sk_test_") {
		t.Fatalf("instance = %v", in)
	}
	if _, app := call(t, s, "GET", base, token, ""); strings.Contains(fmtJSON(app), "sk_test_") {
		t.Fatal("secret keys shown without include_secret_keys=true")
	}
	if _, app := call(t, s, "GET", base+"?include_secret_keys=true", token, ""); !strings.Contains(fmtJSON(app), newKey) {
		t.Fatalf("include_secret_keys=true does not show the newest key: %v", app)
	}
	if st, _ := call(t, s, "GET", "/v1/jwks", old, ""); st != 200 {
		t.Fatal("old key rejected during the delay")
	}
	if st, _ := call(t, s, "POST", "/_admin/clock", "", `{"advance_seconds":3600}`); st != 200 {
		t.Fatalf("admin clock = %d", st)
	}
	if st, _ := call(t, s, "GET", "/v1/jwks", old, ""); st != 401 {
		t.Fatalf("old key after the delay = %d, want 401", st)
	}
	if st, _ := call(t, s, "GET", "/v1/jwks", newKey, ""); st != 200 || s.KeyCount() != 1 {
		t.Fatalf("new key = %d, keys = %d", st, s.KeyCount())
	}
	if r := s.PlatformRotations(); len(r) != 1 || r[0].DelayHours != 1 || r[0].Reason != "test" {
		t.Fatalf("rotations = %+v", r)
	}
}

func fmtJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
