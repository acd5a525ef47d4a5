package servertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/rotor-dev/rotor/api"
)

// Spec is the API's OpenAPI document (api.OpenAPI), loaded and checked,
// with a router over its paths.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router
}

// LoadSpec loads and validates the OpenAPI document of package api.
func LoadSpec(t testing.TB) *Spec {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI())
	if err != nil {
		t.Fatalf("load api/openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("api/openapi.json is not a valid OpenAPI document: %v", err)
	}
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatalf("route api/openapi.json: %v", err)
	}
	return &Spec{Doc: doc, router: r}
}

// Check validates one answer of the API to req: its status, Content-Type
// and, for JSON, its body against the operation's responses in the
// document (the error schema for an error status). An answer to a path or
// method the document does not describe must be the error document when
// it is under /v1/ or answers JSON; elsewhere it is the status page's
// (HTML, a stylesheet, a redirect), which is not part of the API.
// Event streams are checked for status and Content-Type only.
func (s *Spec) Check(req *http.Request, status int, header http.Header, body []byte) error {
	// Match on the path alone: the document's server is "/".
	u := &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	rr := req.Clone(context.Background())
	rr.URL, rr.Host = u, ""
	route, params, err := s.router.FindRoute(rr)
	if err != nil {
		// The status page (HTML, its stylesheet, the redirects of its
		// forms) is served next to the API but is not part of it; under
		// /v1/, and in JSON anywhere, only the error document may answer.
		if !strings.HasPrefix(rr.URL.Path, "/v1/") && header.Get("Content-Type") != "application/json" {
			return nil
		}
		return s.checkError(status, header, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: rr, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{
			IncludeResponseStatus: true,
			ExcludeResponseBody:   strings.HasPrefix(header.Get("Content-Type"), "text/event-stream"),
		},
	}
	in.SetBodyBytes(body)
	return openapi3filter.ValidateResponse(context.Background(), in)
}

// checkError validates an answer against the ErrorBody schema.
func (s *Spec) checkError(status int, header http.Header, body []byte) error {
	if status < 400 {
		return &mismatch{"an undocumented path or method answered " + http.StatusText(status)}
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		return &mismatch{"an error answered with Content-Type " + ct}
	}
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	return s.Doc.Components.Schemas["ErrorBody"].Value.VisitJSON(v)
}

type mismatch struct{ msg string }

func (m *mismatch) Error() string { return m.msg }

func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return v, nil
}

// Validate returns h with every response checked against the document:
// a response that does not match fails t (with the method, path, status
// and what is wrong, never the body, which may carry a value). Wrap the
// API under test with it, e.g. httptest.NewServer(servertest.Validate(t,
// api)). Event streams pass through unbuffered.
func Validate(t testing.TB, h http.Handler) http.Handler {
	spec := LoadSpec(t)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		header := w.Header().Clone()
		if header.Get("Content-Type") == "" && rec.body.Len() > 0 {
			// What net/http sends when the handler sets none.
			header.Set("Content-Type", http.DetectContentType(rec.body.Bytes()))
		}
		if err := spec.Check(r, status, header, rec.body.Bytes()); err != nil {
			t.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v", r.Method, r.URL.Path, status, err)
		}
	})
}

// teeWriter keeps a copy of a response's status and JSON body.
type teeWriter struct {
	http.ResponseWriter
	mu     sync.Mutex
	status int
	body   bytes.Buffer
}

func (w *teeWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *teeWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if !strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		w.mu.Lock()
		w.body.Write(b)
		w.mu.Unlock()
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController flush event streams.
func (w *teeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Transport returns base (http.DefaultTransport when nil) with every
// response checked against the document, for tests that call a running
// rotor serve or rotor daemon over HTTP. A mismatch fails t. Event
// streams pass through unread.
func Transport(t testing.TB, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &checkingTransport{t: t, spec: LoadSpec(t), base: base}
}

type checkingTransport struct {
	t    testing.TB
	spec *Spec
	base http.RoundTripper
}

// RoundTrip sends req and checks the answer, whose body it reads and
// puts back.
func (c *checkingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(req)
	if err != nil || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := c.spec.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		c.t.Errorf("%s %s answered %d, which the OpenAPI document does not allow: %v", req.Method, req.URL.Path, resp.StatusCode, err)
	}
	return resp, nil
}
