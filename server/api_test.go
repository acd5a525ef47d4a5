package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	rotorapi "github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
	"github.com/rotor-dev/rotor/store"
)

// TestEngineErrors drives the real engine into its refusals and checks
// the stable codes.
func TestEngineErrors(t *testing.T) {
	e := newEnv(t)
	steps := []struct {
		name         string
		method, path string
		body         string
		status       int
		code         string
	}{
		{"revoke inside the grace period", "POST", "/v1/secrets/clerk/revoke", "", 409, server.CodeNotExpired},
		{"rollback", "POST", "/v1/secrets/clerk/rollback", "", 200, ""},
		{"rollback again", "POST", "/v1/secrets/clerk/rollback", "", 409, server.CodeNothingToRollBack},
		{"stage", "POST", "/v1/secrets/clerk/stage", `{"value":"stage-me-0123456789"}`, 200, ""},
		{"stage the same value", "POST", "/v1/secrets/clerk/stage", `{"value":"stage-me-0123456789"}`, 409, server.CodeSameKey},
		{"unknown secret", "GET", "/v1/secrets/nope", "", 404, server.CodeNotFound},
		{"rotate unknown secret", "POST", "/v1/secrets/nope/rotate", "", 404, server.CodeNotFound},
	}
	for _, s := range steps {
		resp := e.do(s.method, s.path, tokAdmin, s.body)
		if resp.status != s.status || resp.errorCode() != s.code {
			t.Errorf("%s: %d %q, want %d %q: %s", s.name, resp.status, resp.errorCode(), s.status, s.code, resp.body)
		}
	}
	e.b.Provider.Reject("rejected-value-0123456789")
	if resp := e.do("POST", "/v1/secrets/clerk/stage", tokAdmin, `{"value":"rejected-value-0123456789"}`); resp.status != 422 || resp.errorCode() != server.CodeKeyRejected {
		t.Errorf("rejected stage: %d %s", resp.status, resp.body)
	}
	e.checkNoLeaks()
}

// stubBackend answers every operation with err.
type stubBackend struct {
	err error
}

func (b *stubBackend) Names(context.Context) ([]string, error) { return []string{"clerk"}, b.err }
func (b *stubBackend) Status(context.Context, string) (rotorapi.Status, error) {
	return rotorapi.Status{Name: "clerk", Retired: []rotorapi.Key{}, Orphans: []rotorapi.Orphan{}}, b.err
}
func (b *stubBackend) Rotate(context.Context, string, string) (rotorapi.Result, error) {
	return rotorapi.Result{Secret: "clerk", Kind: "rotate"}, b.err
}
func (b *stubBackend) Rollback(context.Context, string, string) (rotorapi.Result, error) {
	return rotorapi.Result{Secret: "clerk", Kind: "rollback"}, b.err
}
func (b *stubBackend) Stage(_ context.Context, _, value string, _ map[string]string, _ string) (rotorapi.Staged, error) {
	if b.err != nil {
		// A careless backend that quotes the value.
		return rotorapi.Staged{}, fmt.Errorf("value %q: %w", value, b.err)
	}
	return rotorapi.Staged{Secret: "clerk"}, nil
}
func (b *stubBackend) Revoke(context.Context, string, bool, string) (rotorapi.Revoked, error) {
	return rotorapi.Revoked{Secret: "clerk", Revoked: []string{}, Waiting: []string{}}, b.err
}
func (b *stubBackend) KeySet(context.Context, string) (server.KeySet, error) {
	return server.KeySet{}, b.err
}
func (b *stubBackend) Ready(context.Context) error { return b.err }

// discardAudit is an AuditLog that keeps nothing.
type discardAudit struct{}

func (discardAudit) Append(context.Context, audit.Event) (audit.Record, error) {
	return audit.Record{}, nil
}
func (discardAudit) Tail(context.Context, int) ([]audit.Record, error) { return nil, nil }
func (discardAudit) Query(context.Context, audit.Filter, int) ([]audit.Record, error) {
	return nil, nil
}

// newStubServer returns the API over b, its answers checked against the
// OpenAPI document, and its log.
func newStubServer(t *testing.T, b server.Backend, opts ...server.Option) (http.Handler, *syncBuffer) {
	t.Helper()
	tokens, err := authz.NewTokenAuthenticator([]authz.Token{{Name: "admin", Hash: authz.HashToken(tokAdmin), Role: authz.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	api, err := server.New(b, tokens, discardAudit{}, append([]server.Option{server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil)))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	return servertest.Validate(t, api), logs
}

func serve(api http.Handler, method, path, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("Authorization", "Bearer "+tokAdmin)
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	return rec
}

func TestErrorMapping(t *testing.T) {
	inProgress := &rotation.InProgressError{Secret: "clerk", ID: "r1", Holder: "h"}
	tests := []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"in progress", fmt.Errorf("rotate: %w", inProgress), 409, server.CodeRotationInProgress},
		{"nothing to roll back", rotation.ErrNothingToRollBack, 409, server.CodeNothingToRollBack},
		{"not expired", rotation.ErrNotExpired, 409, server.CodeNotExpired},
		{"key in use", rotation.ErrKeyInUse, 409, server.CodeKeyInUse},
		{"test failed", fmt.Errorf("%w: %w", rotation.ErrTestFailed, provider.ErrRejected), 422, server.CodeKeyRejected},
		{"rolled back", rotation.ErrRolledBack, 502, server.CodeRolledBack},
		{"conflict", store.ErrConflict, 409, server.CodeConflict},
		{"lease lost", rotation.ErrLeaseLost, 409, server.CodeConflict},
		{"not found", store.ErrNotFound, 404, server.CodeNotFound},
		{"joined: first sentinel wins", errors.Join(fmt.Errorf("a: %w", rotation.ErrNotExpired), errors.New("b")), 409, server.CodeNotExpired},
		{"timeout", context.DeadlineExceeded, 504, server.CodeTimeout},
		{"internal", errors.New("disk on fire at /var/lib/rotor"), 500, server.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, logs := newStubServer(t, &stubBackend{err: tt.err})
			rec := serve(api, "POST", "/v1/secrets/clerk/rotate", "")
			var body server.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("not JSON: %s", rec.Body)
			}
			if rec.Code != tt.status || body.Error.Code != tt.code || body.Error.Message == "" {
				t.Fatalf("%d %+v, want %d %s", rec.Code, body.Error, tt.status, tt.code)
			}
			if tt.code == server.CodeInternal {
				if strings.Contains(body.Error.Message, "disk on fire") {
					t.Error("an internal error's text reached the caller")
				}
				if !strings.Contains(logs.String(), "disk on fire") {
					t.Error("an internal error was not logged")
				}
			}
		})
	}
}

func TestActionRequiredSteps(t *testing.T) {
	ar := &provider.ActionRequiredError{Action: "create a key in the dashboard", Steps: []string{"open the dashboard", "stage it"}}
	api, _ := newStubServer(t, &stubBackend{err: fmt.Errorf("rotate clerk: %w", ar)})
	rec := serve(api, "POST", "/v1/secrets/clerk/rotate", "")
	var body server.ErrorBody
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 409 || body.Error.Code != server.CodeActionRequired || len(body.Error.Steps) != 2 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

func TestStageValueRedacted(t *testing.T) {
	const value = "sk_live_redact_me_0123456789"
	api, logs := newStubServer(t, &stubBackend{err: rotation.ErrTestFailed})
	rec := serve(api, "POST", "/v1/secrets/clerk/stage", `{"value":"`+value+`"}`)
	if rec.Code != 422 || strings.Contains(rec.Body.String(), value) || !strings.Contains(rec.Body.String(), "[redacted]") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	api2, logs2 := newStubServer(t, &stubBackend{err: errors.New("boom")})
	rec = serve(api2, "POST", "/v1/secrets/clerk/stage", `{"value":"`+value+`"}`)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), value) || strings.Contains(logs2.String(), value) || strings.Contains(logs.String(), value) {
		t.Fatalf("internal stage error leaked the value: %d %s / %s", rec.Code, rec.Body, logs2)
	}
}

func TestRequestBodies(t *testing.T) {
	api, _ := newStubServer(t, &stubBackend{})
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"rotate without body", "/v1/secrets/clerk/rotate", "", 200, ""},
		{"rotate with {}", "/v1/secrets/clerk/rotate", " {} ", 200, ""},
		{"unknown field", "/v1/secrets/clerk/rotate", `{"force":true}`, 400, server.CodeBadRequest},
		{"unknown field in stage", "/v1/secrets/clerk/stage", `{"value":"x","valeu":"y"}`, 400, server.CodeBadRequest},
		{"trailing data", "/v1/secrets/clerk/revoke", `{"force":true} {}`, 400, server.CodeBadRequest},
		{"wrong type", "/v1/secrets/clerk/revoke", `{"force":"yes"}`, 400, server.CodeBadRequest},
		{"not an object", "/v1/secrets/clerk/revoke", `[1]`, 400, server.CodeBadRequest},
		{"stage without body", "/v1/secrets/clerk/stage", "", 400, server.CodeBadRequest},
		{"stage empty value", "/v1/secrets/clerk/stage", `{"value":""}`, 400, server.CodeBadRequest},
		{"stage meta wrong type", "/v1/secrets/clerk/stage", `{"value":"v","meta":{"a":1}}`, 400, server.CodeBadRequest},
		{"too large", "/v1/secrets/clerk/stage", `{"value":"` + strings.Repeat("a", 70<<10) + `"}`, 413, server.CodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(api, "POST", tt.path, tt.body)
			var body server.ErrorBody
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != tt.status || body.Error.Code != tt.code {
				t.Fatalf("%d %s, want %d %s", rec.Code, rec.Body, tt.status, tt.code)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	api, _ := newStubServer(t, &stubBackend{})
	rec := serve(api, "GET", "/v1/nope", "")
	if rec.Code != 404 || !strings.Contains(rec.Body.String(), `"not_found"`) {
		t.Errorf("unknown path: %d %s", rec.Code, rec.Body)
	}
	rec = serve(api, "DELETE", "/v1/secrets/clerk", "")
	if rec.Code != 405 || !strings.Contains(rec.Body.String(), `"method_not_allowed"`) || !strings.Contains(rec.Header().Get("Allow"), "GET") {
		t.Errorf("wrong method: %d %s %v", rec.Code, rec.Body, rec.Header())
	}
	if rec := serve(api, "GET", "/metrics", ""); rec.Code != 404 {
		t.Errorf("metrics without a handler: %d", rec.Code)
	}
	if rec := serve(api, "GET", "/v1/audit?n=0", ""); rec.Code != 400 {
		t.Errorf("audit n=0: %d", rec.Code)
	}
}

func TestReadyz(t *testing.T) {
	e := newEnv(t)
	if r := e.do("GET", "/readyz", "", ""); r.status != 200 {
		t.Fatalf("ready: %d", r.status)
	}
	e.b.SetReady(errors.New("vault sealed"))
	r := e.do("GET", "/readyz", "", "")
	if r.status != 503 || r.errorCode() != server.CodeNotReady || strings.Contains(r.body, "sealed") {
		t.Fatalf("not ready: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/healthz", "", ""); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
}

func TestOpenMetricsAndObserver(t *testing.T) {
	var mu sync.Mutex
	var seen []server.RequestInfo
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "rotor_up 1\n") })
	e := newEnv(t, server.WithMetrics(metrics, true), server.WithObserver(func(ri server.RequestInfo) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, ri)
	}))
	if r := e.do("GET", "/metrics", "", ""); r.status != 200 || r.body != "rotor_up 1\n" {
		t.Fatalf("open metrics: %d %q", r.status, r.body)
	}
	e.do("GET", "/v1/secrets/clerk", tokViewer, "")
	e.do("POST", "/v1/secrets/clerk/rotate", tokViewer, "")
	mu.Lock()
	defer mu.Unlock()
	want := []server.RequestInfo{
		{Endpoint: "GET /metrics", Status: 200},
		{Endpoint: "GET /v1/secrets/{name}", Status: 200, Role: authz.RoleViewer},
		{Endpoint: "POST /v1/secrets/{name}/rotate", Status: 403, Role: authz.RoleViewer},
	}
	if len(seen) != len(want) {
		t.Fatalf("observed %d requests, want %d", len(seen), len(want))
	}
	for i, w := range want {
		if g := seen[i]; g.Endpoint != w.Endpoint || g.Status != w.Status || g.Role != w.Role {
			t.Errorf("request %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestListAndAuditScoped(t *testing.T) {
	e := newEnv(t)
	scoped, err := authz.NewTokenAuthenticator([]authz.Token{{Name: "scoped", Hash: authz.HashToken(tokScoped), Role: authz.RoleViewer, Secrets: []string{"other"}}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(e.b, scoped, e.b.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer api.Close()
	req := func(path string) string {
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = "127.0.0.1:1"
		r.Header.Set("Authorization", "Bearer "+tokScoped)
		rec := httptest.NewRecorder()
		servertest.Validate(t, api).ServeHTTP(rec, r)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
		return rec.Body.String()
	}
	var list server.ListResponse
	json.Unmarshal([]byte(req("/v1/secrets")), &list)
	if len(list.Secrets) != 1 || list.Secrets[0] != "other" {
		t.Fatalf("list = %v", list.Secrets)
	}
	var aud server.AuditResponse
	json.Unmarshal([]byte(req("/v1/audit?n=1000")), &aud)
	if len(aud.Records) == 0 {
		t.Fatal("no records about other")
	}
	for _, r := range aud.Records {
		if r.Secret != "other" {
			t.Fatalf("scoped viewer saw a record about %q", r.Secret)
		}
	}
}

func TestNewValidates(t *testing.T) {
	e := newEnv(t)
	tokens, _ := authz.NewTokenAuthenticator(nil)
	if _, err := server.New(nil, tokens, e.b.Log); err == nil {
		t.Error("nil backend accepted")
	}
	if _, err := server.New(e.b, tokens, e.b.Log, server.WithWatchInterval(0)); err == nil {
		t.Error("zero interval accepted")
	}
}

func TestVersionSeq(t *testing.T) {
	for v, want := range map[store.Version]uint64{"42": 42, "7.ab-cd.ef": 7, "": 0, "x1": 0, "99999999999999999999999": 0} {
		if got := server.VersionSeq(v); got != want {
			t.Errorf("VersionSeq(%q) = %d, want %d", v, got, want)
		}
	}
}

// FuzzStageBody posts arbitrary bodies to stage: the server must answer
// 200 or a 4xx with a JSON error, never panic or fail internally.
func FuzzStageBody(f *testing.F) {
	tokens, _ := authz.NewTokenAuthenticator([]authz.Token{{Name: "admin", Hash: authz.HashToken(tokAdmin), Role: authz.RoleAdmin}})
	api, err := server.New(&stubBackend{}, tokens, discardAudit{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(api.Close)
	for _, s := range []string{`{"value":"v"}`, `{"value":"v","meta":{"a":"b"}}`, `{}`, `{"value":1}`, `null`, `{"value":"\ud800"}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		rec := serve(api, "POST", "/v1/secrets/clerk/stage", body)
		if rec.Code != 200 && (rec.Code < 400 || rec.Code >= 500) {
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if rec.Code != 200 {
			var eb server.ErrorBody
			if json.Unmarshal(rec.Body.Bytes(), &eb) != nil || eb.Error.Code == "" {
				t.Fatalf("not a JSON error: %s", rec.Body)
			}
		}
	})
}

// TestAuditFilters checks the query parameters of GET /v1/audit: each
// record returned passes every filter given, and a bad since is a 400.
func TestAuditFilters(t *testing.T) {
	e := newEnv(t)
	if resp := e.do("POST", "/v1/secrets/other/rotate", tokCI, ""); resp.status != 200 {
		t.Fatalf("rotate other: %d %s", resp.status, resp.body)
	}
	tests := []struct {
		query string
		check func(audit.Record) bool
	}{
		{"secret=other", func(r audit.Record) bool { return r.Secret == "other" }},
		{"initiator=user:setup", func(r audit.Record) bool { return strings.HasPrefix(r.Initiator, "user:setup") }},
		{"since=1h&secret=clerk", func(r audit.Record) bool { return r.Secret == "clerk" && time.Since(r.Timestamp) < time.Hour }},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp := e.do("GET", "/v1/audit?n=1000&"+tt.query, tokViewer, "")
			if resp.status != 200 {
				t.Fatalf("%d %s", resp.status, resp.body)
			}
			var aud server.AuditResponse
			if err := json.Unmarshal([]byte(resp.body), &aud); err != nil {
				t.Fatal(err)
			}
			if len(aud.Records) == 0 {
				t.Fatal("no record matched")
			}
			for _, r := range aud.Records {
				if !tt.check(r) {
					t.Errorf("record %d (%s, %s) does not pass %s", r.Seq, r.Secret, r.Initiator, tt.query)
				}
			}
		})
	}
	for _, q := range []string{"since=1hour", "since=-3d"} {
		if resp := e.do("GET", "/v1/audit?"+q, tokViewer, ""); resp.status != 400 {
			t.Errorf("%s: %d, want 400", q, resp.status)
		}
	}
	if resp := e.do("GET", "/v1/audit?since=3000-01-01T00:00:00Z", tokViewer, ""); resp.status != 200 || !strings.Contains(resp.body, `"records":[]`) {
		t.Errorf("since in the future: %d %s, want no records", resp.status, resp.body)
	}
}
