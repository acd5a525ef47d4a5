package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/authz/authztest"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
)

// Tokens of the test deployment.
const (
	tokAdmin    = "rtr_admin_1VxFPI_d1uE3z-Nx9tTRiYdElIxHgxyL"
	tokCI       = "rtr_ci_vSaGXFPB1ccV-uxD0rscYEfgPxkKFDwi"
	tokViewer   = "rtr_viewer_UzeNNEWzJqWqY1tUAQlhlTvpZ_Mowud7"
	tokApp      = "rtr_app_z8k_oNPePqpG4bAOrN1rvpxDyGzlcSes"
	tokOtherApp = "rtr_otherapp_XRnL7dBMSZ_0uPWT7fOfFhxzsbWTZi6t"
	tokScoped   = "rtr_scoped_Qm3Zr8vK2pX9wLc4TnB7yHd1FsJ6gAeU"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers (the server's
// log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one deployment: a backend with secrets "clerk" (rotated once, so
// it has a previous key) and "other", tokens for every role, a local OIDC
// issuer, and the API on an httptest server.
type env struct {
	t       *testing.T
	b       *servertest.Backend
	api     *server.Server
	h       http.Handler // api, its answers checked against the OpenAPI document
	srv     *httptest.Server
	issuer  *authztest.Issuer
	logs    *syncBuffer
	outputs []string // response bodies, for leak scans
	mu      sync.Mutex
}

func newEnv(t *testing.T, opts ...server.Option) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with the API serving wrap(backend) instead of the
// backend itself, when wrap is not nil.
func newEnvWith(t *testing.T, wrap func(*servertest.Backend) server.Backend, opts ...server.Option) *env {
	t.Helper()
	b := servertest.NewBackend(t, "clerk", "other")
	if _, err := b.Rotate(t.Context(), "clerk", "user:setup"); err != nil {
		t.Fatal(err)
	}
	tokens, err := authz.NewTokenAuthenticator([]authz.Token{
		{Name: "admin", Hash: authz.HashToken(tokAdmin), Role: authz.RoleAdmin},
		{Name: "ci", Hash: authz.HashToken(tokCI), Role: authz.RoleCI},
		{Name: "viewer", Hash: authz.HashToken(tokViewer), Role: authz.RoleViewer},
		{Name: "web", Hash: authz.HashToken(tokApp), Role: authz.RoleApp, Secrets: []string{"clerk"}},
		{Name: "other-app", Hash: authz.HashToken(tokOtherApp), Role: authz.RoleApp, Secrets: []string{"other"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	iss := authztest.NewIssuer(t)
	oidc, err := authz.NewOIDCVerifier(authz.OIDCConfig{
		Issuer: iss.URL(), Audience: "rotor",
		Rules: []authz.OIDCRule{{Repository: "org/app", Ref: "refs/heads/main", Role: authz.RoleCI, Secrets: []string{"clerk"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "rotor_up 1\n") })
	base := []server.Option{
		server.WithLogger(slog.New(slog.NewJSONHandler(logs, nil))),
		server.WithMetrics(metrics, false),
		// Streams are driven by notifications, not by polling or time.
		server.WithWatchInterval(time.Hour),
		server.WithHeartbeat(time.Hour),
		// Every refusal gets a record of its own: the access tests check
		// each one. Coalescing is tested in hostile_test.go.
		server.WithDenialLimits(1e9, 1<<30, time.Nanosecond),
		server.WithClock(b.Clock.Now),
	}
	var backend server.Backend = b
	if wrap != nil {
		backend = wrap(b)
	}
	api, err := server.New(backend, authz.Chain(tokens, oidc), b.Log, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	h := servertest.Validate(t, api)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close) // runs first: ends streams so srv.Close does not wait
	return &env{t: t, b: b, api: api, h: h, srv: srv, issuer: iss, logs: logs}
}

// oidcToken returns a GitHub Actions token for org/app on ref.
func (e *env) oidcToken(ref string, mod func(map[string]any)) string {
	c := e.issuer.GitHubClaims("rotor", "org/app", ref)
	if mod != nil {
		mod(c)
	}
	return e.issuer.Sign(e.t, c)
}

// response is a finished request.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) errorCode() string {
	var b server.ErrorBody
	json.Unmarshal([]byte(r.body), &b)
	return b.Error.Code
}

// do sends a request with token (none when empty) and returns the answer;
// bodies are kept for leak scans.
func (e *env) do(method, path, token, body string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	e.mu.Lock()
	e.outputs = append(e.outputs, string(b))
	e.mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// stream is an open watch stream.
type stream struct {
	resp   *http.Response
	events chan sseEvent
	cancel context.CancelFunc
}

type sseEvent struct {
	typ, id string
	data    []byte
	comment string
}

// watch opens GET /v1/watch/{name}. On 200 it reads events on a goroutine
// into s.events; otherwise it returns the response with its body read.
func (e *env) watch(name, token string) (*stream, response) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(e.t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/watch/"+name, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		e.mu.Lock()
		e.outputs = append(e.outputs, string(b))
		e.mu.Unlock()
		return nil, response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	}
	s := &stream{resp: resp, events: make(chan sseEvent, 16), cancel: cancel}
	e.t.Cleanup(s.close)
	go func() {
		defer close(s.events)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.typ != "" || ev.comment != "" {
					s.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, ":"):
				ev.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "event: "):
				ev.typ = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = append(ev.data, line[len("data: "):]...)
			}
		}
	}()
	return s, response{status: resp.StatusCode, header: resp.Header}
}

func (s *stream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// wireSet mirrors the data of a keys event.
type wireSet struct {
	Secret  string `json:"secret"`
	Version string `json:"version"`
	Seq     uint64 `json:"seq"`
	Current struct {
		ID    string `json:"id"`
		Value string `json:"value"`
	} `json:"current"`
	Previous *struct {
		ID        string    `json:"id"`
		Value     string    `json:"value"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"previous"`
}

// next waits (boundedly) for the next keys event, skipping heartbeats.
func (s *stream) next(t *testing.T) wireSet {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatal("stream ended")
			}
			if ev.typ != "keys" {
				continue
			}
			var ws wireSet
			if err := json.Unmarshal(ev.data, &ws); err != nil {
				t.Fatalf("bad keys event: %v", err)
			}
			if ev.id == "" {
				t.Fatal("keys event without an id")
			}
			return ws
		case <-deadline:
			t.Fatal("no keys event within 10s")
		}
	}
}

// records returns the audit log.
func (e *env) records() []audit.Record {
	e.t.Helper()
	recs, err := e.b.Log.Tail(e.t.Context(), 0)
	if err != nil {
		e.t.Fatal(err)
	}
	return recs
}

// checkNoLeaks fails if any value the backend ever held appears in the
// audit log, the server's log or a response other than a watch stream.
func (e *env) checkNoLeaks() {
	e.t.Helper()
	logJSON, _ := json.Marshal(e.records())
	e.mu.Lock()
	outputs := strings.Join(e.outputs, "\n")
	e.mu.Unlock()
	places := map[string]string{"audit log": string(logJSON), "server log": e.logs.String(), "responses": outputs}
	for _, v := range e.b.Values() {
		for where, text := range places {
			if strings.Contains(text, v) {
				e.t.Errorf("a secret value appears in the %s", where)
			}
		}
	}
}
