package server_test

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
)

// apiEndpoint is one endpoint of the role × endpoint table.
type apiEndpoint struct {
	name   string // the action: audit records say api.<name>
	method string
	path   string
	body   string
	secret string // the secret the audit record names
	open   bool   // no authentication
	ok     int    // the status of success, when not 200
}

// endpoints in an order that leaves every one able to succeed for a caller
// allowed them all: stage a key, rotate to it, roll back, revoke.
var endpoints = []apiEndpoint{
	{name: "list", method: "GET", path: "/v1/secrets"},
	{name: "status", method: "GET", path: "/v1/secrets/clerk", secret: "clerk"},
	{name: "audit", method: "GET", path: "/v1/audit"},
	{name: "metrics", method: "GET", path: "/metrics"},
	{name: "watch", method: "GET", path: "/v1/watch/clerk", secret: "clerk"},
	{name: "stage", method: "POST", path: "/v1/secrets/clerk/stage", body: `{"value":"staged-value-0123456789","meta":{"name":"dashboard key"}}`, secret: "clerk"},
	{name: "rotate", method: "POST", path: "/v1/secrets/clerk/rotate", body: `{}`, secret: "clerk"},
	{name: "rollback", method: "POST", path: "/v1/secrets/clerk/rollback", secret: "clerk"},
	{name: "revoke", method: "POST", path: "/v1/secrets/clerk/revoke", body: `{"force":true}`, secret: "clerk"},
	{name: "notify", method: "POST", path: "/v1/secrets/clerk/notify", secret: "clerk", ok: http.StatusAccepted},
	{name: "healthz", method: "GET", path: "/healthz", open: true},
	{name: "readyz", method: "GET", path: "/readyz", open: true},
}

// TestAccessTable sends every endpoint as every kind of caller and checks
// the answer, and that each refusal (and nothing else) is audited as
// denied with the caller's identity.
func TestAccessTable(t *testing.T) {
	const anon = "unauthenticated:127.0.0.1"
	const oidcSubject = "ci:github:org/app:rotate#1234567890"
	ciActions := "list status stage rotate rollback revoke notify"
	callers := []struct {
		name    string
		token   func(e *env) string
		subject string // audit initiator of its refusals
		allowed string // actions answered 200; "" with status401 = none
		status  int    // status of the refusals: 401 or 403
		reason  string
	}{
		{"no credential", func(*env) string { return "" }, anon, "", 401, "no Authorization header"},
		{"unknown token", func(*env) string { return "rtr_not_a_token" }, anon, "", 401, "hash not configured"},
		{"expired oidc token", func(e *env) string {
			return e.oidcToken("refs/heads/main", func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() })
		}, anon, "", 401, "exp in the past"},
		{"oidc token for another audience", func(e *env) string {
			return e.oidcToken("refs/heads/main", func(c map[string]any) { c["aud"] = "https://github.com/org" })
		}, anon, "", 401, "aud is not rotor"},
		{"admin", func(*env) string { return tokAdmin }, "token:admin", "list status audit metrics watch stage rotate rollback revoke notify", 0, "admin may do everything"},
		{"ci", func(*env) string { return tokCI }, "token:ci", ciActions, 403, "no audit, metrics or values"},
		{"viewer", func(*env) string { return tokViewer }, "token:viewer", "list status audit metrics", 403, "read-only, no values"},
		{"app granted clerk", func(*env) string { return tokApp }, "token:web", "watch", 403, "watch only"},
		{"app granted another secret", func(*env) string { return tokOtherApp }, "token:other-app", "", 403, "clerk not granted"},
		{"oidc ci on main", func(e *env) string { return e.oidcToken("refs/heads/main", nil) }, oidcSubject, ciActions, 403, "rule gives ci on clerk"},
		{"oidc token no rule matches", func(e *env) string { return e.oidcToken("refs/heads/feature", nil) }, oidcSubject, "", 403, "authenticated, no role"},
	}
	for _, c := range callers {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			allowed := strings.Fields(c.allowed)
			for _, ep := range endpoints {
				before := len(e.records())
				token := c.token(e)
				var status int
				if ep.name == "watch" {
					s, resp := e.watch("clerk", token)
					status = resp.status
					if s != nil {
						if ws := s.next(t); ws.Current.Value == "" || ws.Secret != "clerk" {
							t.Errorf("watch: first event %+v lacks the current key", ws.Secret)
						}
						s.close()
					}
				} else {
					resp := e.do(ep.method, ep.path, token, ep.body)
					status = resp.status
					if status >= 400 && resp.errorCode() == "" {
						t.Errorf("%s: status %d without a JSON error: %s", ep.name, status, resp.body)
					}
				}
				want := c.status
				if ep.open || slices.Contains(allowed, ep.name) {
					want = cmp.Or(ep.ok, http.StatusOK)
				}
				if status != want {
					t.Errorf("%s %s: status %d, want %d (%s)", ep.method, ep.path, status, want, c.reason)
					continue
				}
				recs := e.records()[before:]
				denied := slices.DeleteFunc(slices.Clone(recs), func(r audit.Record) bool { return r.Status != audit.StatusDenied })
				if want < 400 {
					if len(denied) > 0 {
						t.Errorf("%s: allowed request audited as denied: %+v", ep.name, denied[0].Event)
					}
					continue
				}
				if len(denied) != 1 {
					t.Errorf("%s: %d denied records, want 1", ep.name, len(denied))
					continue
				}
				if r := denied[0]; r.Action != "api."+ep.name || r.Initiator != c.subject || r.Secret != ep.secret {
					t.Errorf("%s: audit record action=%q initiator=%q secret=%q, want api.%s, %q, %q",
						ep.name, r.Action, r.Initiator, r.Secret, ep.name, c.subject, ep.secret)
				}
			}
			e.checkNoLeaks()
		})
	}
}

// TestRefusalDetails checks what the audit record of a refusal says.
func TestRefusalDetails(t *testing.T) {
	e := newEnv(t)
	expired := e.oidcToken("refs/heads/main", func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })
	tests := []struct {
		name   string
		token  string
		path   string
		want   []string // substrings of the detail
		status int
	}{
		{"no credential", "", "/v1/secrets/clerk/rotate", []string{"POST /v1/secrets/clerk/rotate from 127.0.0.1", "no bearer token"}, 401},
		{"expired oidc names the claimed identity", expired, "/v1/secrets/clerk/rotate", []string{"expired", "claimed (unverified) identity ci:github:org/app:rotate#1234567890"}, 401},
		{"role", tokViewer, "/v1/secrets/clerk/rotate", []string{"role viewer may not rotate"}, 403},
		{"secret not granted", tokOtherApp, "/v1/watch/clerk", []string{"token:other-app (role app) is not granted secret clerk"}, 403},
		{"no role", e.oidcToken("refs/heads/x", nil), "/v1/secrets/clerk/rotate", []string{"has no role"}, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := "POST"
			if strings.HasPrefix(tt.path, "/v1/watch") {
				method = "GET"
			}
			resp := e.do(method, tt.path, tt.token, "")
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d", resp.status, tt.status)
			}
			if tt.status == 401 && !strings.HasPrefix(resp.header.Get("WWW-Authenticate"), "Bearer") {
				t.Error("401 without WWW-Authenticate: Bearer")
			}
			recs := e.records()
			last := recs[len(recs)-1]
			for _, w := range tt.want {
				if !strings.Contains(last.Detail, w) {
					t.Errorf("detail %q lacks %q", last.Detail, w)
				}
			}
			if tt.token != "" && strings.Contains(last.Detail, tt.token) {
				t.Error("the audit record contains the credential")
			}
		})
	}
}

// TestInvalidNameNotCopied makes sure arbitrary path text from an
// unauthenticated caller does not become the secret of an audit record.
func TestInvalidNameNotCopied(t *testing.T) {
	e := newEnv(t)
	if resp := e.do("POST", "/v1/secrets/.evil%0Aname/rotate", "", ""); resp.status != 401 {
		t.Fatalf("status %d", resp.status)
	}
	recs := e.records()
	if r := recs[len(recs)-1]; r.Secret != "" || r.Status != audit.StatusDenied {
		t.Fatalf("record %+v", r.Event)
	}
	if resp := e.do("POST", "/v1/secrets/.evil/rotate", tokAdmin, ""); resp.status != 400 || resp.errorCode() != "bad_request" {
		t.Fatalf("admin with an invalid name: %d %s", resp.status, resp.body)
	}
}
