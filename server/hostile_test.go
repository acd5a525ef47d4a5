package server_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/server"
)

// Hostile input to the API: each case is something an attacker with API
// access sends, and what rotor must answer. See also access_test.go for
// credentials and roles.

// TestHostileBodies: bodies that encoding/json alone would accept in a
// form other than the one the caller sees (duplicates, case-folded keys,
// invalid UTF-8) and staged values no consumer could use are refused with
// 400 before the backend sees them.
func TestHostileBodies(t *testing.T) {
	b := &stagingBackend{}
	api, _ := newStubServer(t, b)
	tests := []struct {
		name, path, body string
		reason           string
	}{
		{"duplicate value", "/v1/secrets/clerk/stage", `{"value":"sk_test_first","value":"sk_test_second"}`,
			"a proxy that checks the first value and rotor that keeps the last would disagree"},
		{"duplicate force", "/v1/secrets/clerk/revoke", `{"force":false,"force":true}`,
			"a reviewer reading force:false would be wrong"},
		{"case-folded key", "/v1/secrets/clerk/stage", `{"VALUE":"sk_test_abc"}`,
			"encoding/json matches VALUE to value"},
		{"case-folded force", "/v1/secrets/clerk/revoke", `{"Force":true}`,
			"a filter looking for \"force\" would miss it"},
		{"duplicate meta key", "/v1/secrets/clerk/stage", `{"value":"v1","meta":{"name":"a","name":"b"}}`,
			"meta is kept with the key; which name is it?"},
		{"invalid UTF-8", "/v1/secrets/clerk/stage", "{\"value\":\"x\xff\xfe\"}",
			"encoding/json would stage x followed by U+FFFD"},
		{"NUL in value", "/v1/secrets/clerk/stage", `{"value":"abc\u0000def"}`,
			"no environment variable can carry a NUL: rotor run would fail for the whole grace period"},
		{"newline in value", "/v1/secrets/clerk/stage", `{"value":"abc\ndef"}`,
			"a newline ends the variable in an env file"},
		{"carriage return in value", "/v1/secrets/clerk/stage", `{"value":"abc\rdef"}`,
			"same rule as the CLI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(api, "POST", tt.path, tt.body)
			var body server.ErrorBody
			json.Unmarshal(rec.Body.Bytes(), &body)
			if rec.Code != 400 || body.Error.Code != server.CodeBadRequest {
				t.Fatalf("%d %s, want 400 bad_request (%s)", rec.Code, rec.Body, tt.reason)
			}
		})
	}
	if b.stages != 0 {
		t.Fatalf("the backend was asked to stage %d refused values", b.stages)
	}
	if rec := serve(api, "POST", "/v1/secrets/clerk/stage", `{"value":"sk_test_fine","meta":{"name":"rotor-1"}}`); rec.Code != 200 || b.stages != 1 {
		t.Fatalf("a well-formed stage: %d %s", rec.Code, rec.Body)
	}
}

// stagingBackend counts the stages that reach it.
type stagingBackend struct {
	stubBackend
	stages int
}

func (b *stagingBackend) Stage(ctx context.Context, name, value string, meta map[string]string, initiator string) (any, error) {
	b.stages++
	return b.stubBackend.Stage(ctx, name, value, meta, initiator)
}

// TestHostileOIDCRules: rules that would hand a role to tokens from
// repositories the operator never meant (any GitHub repository can get a
// token for any audience) are refused when the server is configured,
// naming the field at fault. Before, only all-'*' patterns were refused:
// sub: 'repo:*/*:ref:refs/heads/main' with role admin let every repository
// on GitHub rotate secrets and stream values.
func TestHostileOIDCRules(t *testing.T) {
	tests := []struct {
		name string
		rule authz.OIDCRule
		want string
	}{
		{"any owner, any repository", authz.OIDCRule{Subject: "repo:*/*:ref:refs/heads/main", Role: authz.RoleAdmin}, "sub"},
		{"any repository of an owner via sub", authz.OIDCRule{Subject: "repo:acme/*:environment:production", Role: authz.RoleCI}, "sub"},
		{"owner prefix", authz.OIDCRule{Subject: "repo:acme*/web:*", Role: authz.RoleCI}, "sub"},
		{"character class", authz.OIDCRule{Subject: "repo:[a-z]cme/web:*", Role: authz.RoleCI}, "sub"},
		{"owner only", authz.OIDCRule{RepositoryOwner: "acme", Ref: "refs/heads/main", Role: authz.RoleCI}, "pin one repository"},
		{"owner id only", authz.OIDCRule{RepositoryOwnerID: "123", Role: authz.RoleCI}, "pin one repository"},
		{"wildcard repository", authz.OIDCRule{Repository: "acme/*", Role: authz.RoleCI}, "repository"},
		{"wildcard owner", authz.OIDCRule{Repository: "*/web", Role: authz.RoleCI}, "repository"},
		{"ref only", authz.OIDCRule{Ref: "refs/heads/main", Role: authz.RoleAdmin}, "pin one repository"},
		{"environment only", authz.OIDCRule{Environment: "production", Role: authz.RoleAdmin}, "pin one repository"},
		{"workflow from any repository", authz.OIDCRule{Repository: "acme/web", JobWorkflowRef: "*/*/.github/workflows/rotate.yml@*", Role: authz.RoleCI}, "job_workflow_ref"},
		{"non-GitHub subject pattern", authz.OIDCRule{Subject: "system:serviceaccount:*:rotor", Role: authz.RoleCI}, "sub"},
		{"sub contradicts repository", authz.OIDCRule{Repository: "acme/web", Subject: "repo:acme/api:*", Role: authz.RoleCI}, "never match"},
		{"repository_id not a number", authz.OIDCRule{RepositoryID: "*", Role: authz.RoleCI}, "repository_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authz.NewOIDCVerifier(authz.OIDCConfig{Audience: "rotor", Rules: []authz.OIDCRule{tt.rule}})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want a refusal naming %q", err, tt.want)
			}
		})
	}
	// What rules may still do: wildcards after a pinned repository.
	for _, ok := range []authz.OIDCRule{
		{Subject: "repo:acme/web:ref:refs/heads/*", Role: authz.RoleCI},
		{Repository: "acme/web", Ref: "refs/tags/v*", Role: authz.RoleViewer},
		{RepositoryID: "123456", Environment: "production", Role: authz.RoleAdmin},
		{Repository: "acme/web", JobWorkflowRef: "acme/infra/.github/workflows/*.yml@refs/heads/main", Role: authz.RoleCI},
		{Subject: "system:serviceaccount:ops:rotor", Role: authz.RoleCI},
	} {
		if _, err := authz.NewOIDCVerifier(authz.OIDCConfig{Audience: "rotor", Rules: []authz.OIDCRule{ok}}); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// TestHostileWeakToken: a guessable token is refused even when its hash is
// configured, because an attacker can guess it as well as its owner.
func TestHostileWeakToken(t *testing.T) {
	tokens, err := authz.NewTokenAuthenticator([]authz.Token{{Name: "lazy", Hash: authz.HashToken("admin"), Role: authz.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	api, err := server.New(&stubBackend{}, tokens, discardAudit{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Close)
	req := httptest.NewRequest("GET", "/v1/secrets", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("Authorization", "Bearer admin")
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "too weak") {
		t.Fatalf("%d %s, want 401 naming a weak token", rec.Code, rec.Body)
	}
}
