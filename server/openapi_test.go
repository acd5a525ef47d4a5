package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	rotorapi "github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/server/servertest"
)

// TestOpenAPIServed: the document is served, to anyone, as checked in.
func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/openapi.json", "", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" || !bytes.Equal([]byte(r.body), rotorapi.OpenAPI()) {
		t.Fatalf("GET /v1/openapi.json: %d %s, want the document of package api", r.status, r.header.Get("Content-Type"))
	}
}

// TestOpenAPIDescribesEveryRoute: each operation of the document reaches
// a route of the server (an unknown route answers 404 "no such endpoint",
// a wrong method 405), so the document names nothing the server lacks.
// The other direction, a route the document lacks, fails servertest.Validate
// in every test that calls it.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	spec := servertest.LoadSpec(t)
	n := 0
	for path, item := range spec.Doc.Paths.Map() {
		for method := range item.Operations() {
			if path == "/v1/watch/{name}" {
				continue // a stream; TestWatch… open it
			}
			n++
			p := strings.ReplaceAll(path, "{name}", "clerk")
			r := e.do(method, p, tokViewer, "")
			if r.status == http.StatusMethodNotAllowed || r.status == http.StatusNotFound && strings.Contains(r.body, "no such endpoint") {
				t.Errorf("%s %s is in the OpenAPI document but the server answers %d", method, path, r.status)
			}
		}
	}
	if n < 12 {
		t.Fatalf("only %d operations in the document", n)
	}
}

// TestValidateCatchesDrift: the validator the server tests run under
// refuses what the API once answered (rotate with Go field names), an
// extra field, and a success on a path the document does not describe.
func TestValidateCatchesDrift(t *testing.T) {
	spec := servertest.LoadSpec(t)
	json := http.Header{"Content-Type": {"application/json"}}
	rotate := httptest.NewRequest("POST", "/v1/secrets/clerk/rotate", nil)
	tests := []struct {
		name   string
		req    *http.Request
		status int
		body   string
		ok     bool
	}{
		{"snake_case result", rotate, 200, `{"secret":"clerk","operation_id":"r1","kind":"rotate","resumed":false,"current_key_id":"a","previous_key_id":"b"}`, true},
		{"Go field names", rotate, 200, `{"Secret":"clerk","Rotation":"r1","Resumed":false}`, false},
		{"extra field", rotate, 200, `{"secret":"clerk","operation_id":"r1","kind":"rotate","resumed":false,"current_key_id":"a","previous_key_id":"b","value":"sk_x"}`, false},
		{"error document", rotate, 409, `{"error":{"code":"rotation_in_progress","message":"held"}}`, true},
		{"error with an unknown code", rotate, 409, `{"error":{"code":"busy","message":"held"}}`, false},
		{"undocumented path", httptest.NewRequest("GET", "/v1/keys", nil), 200, `{}`, false},
		{"JSON outside /v1", httptest.NewRequest("GET", "/keys", nil), 200, `{}`, false},
		{"undocumented status", rotate, 202, `{"secret":"clerk"}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := spec.Check(tt.req, tt.status, json, []byte(tt.body))
			if (err == nil) != tt.ok {
				t.Fatalf("Check = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
