package server_test

import (
	"context"
	"encoding/json"
	"testing"

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
