package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rotorapi "github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
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

func (b *stagingBackend) Stage(ctx context.Context, name, value string, meta map[string]string, initiator string) (rotorapi.Staged, error) {
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
	servertest.Validate(t, api).ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "too weak") {
		t.Fatalf("%d %s, want 401 naming a weak token", rec.Code, rec.Body)
	}
}

// floodAPI is an API over a real audit log with the given denial rate,
// the default burst and a window of an hour (one window for the whole
// test), and an observer counting statuses and denial outcomes.
type floodAPI struct {
	api      *server.Server
	b        *servertest.Backend
	mu       sync.Mutex
	statuses map[int]int
	denials  map[string]int
}

func newFloodAPI(t testing.TB, perSecond float64) *floodAPI {
	return newFloodAPIWith(t, server.WithDenialLimits(perSecond, server.DefaultDenialBurst, time.Hour))
}

func newFloodAPIWith(t testing.TB, limits server.Option) *floodAPI {
	f := &floodAPI{b: servertest.NewBackend(t, "clerk"), statuses: map[int]int{}, denials: map[string]int{}}
	tokens, err := authz.NewTokenAuthenticator([]authz.Token{{Name: "admin", Hash: authz.HashToken(tokAdmin), Role: authz.RoleAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	f.api, err = server.New(f.b, tokens, f.b.Log, limits,
		server.WithObserver(func(ri server.RequestInfo) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.statuses[ri.Status]++
			if ri.Denial != "" {
				f.denials[ri.Denial]++
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// get sends GET /v1/secrets to the API served at url over HTTP.
func (f *floodAPI) get(t testing.TB, c *http.Client, url, token string) int {
	req, err := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/secrets", nil)
	if err != nil {
		t.Error(err)
		return 0
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// floodToken is the credential of a flood's j-th request from flooder i:
// none, then unknown tokens.
func floodToken(i, j int) string {
	if j%2 == 0 {
		return ""
	}
	return fmt.Sprintf("rtr_flood_%d_%d_Qm3Zr8vK2pX9wLc4TnB7yHd1FsJ6gAeU", i, j)
}

func (f *floodAPI) serve(addr, token string) int {
	req := httptest.NewRequest("GET", "/v1/secrets", nil)
	req.RemoteAddr = addr
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	f.api.ServeHTTP(rec, req)
	return rec.Code
}

// deniedRecords returns the audit records with status denied.
func (f *floodAPI) deniedRecords(t *testing.T) []audit.Record {
	recs, err := f.b.Log.Tail(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Record
	for _, r := range recs {
		if r.Status == audit.StatusDenied {
			out = append(out, r)
		}
	}
	return out
}

// TestHostileDenialFlood: a client sending thousands of requests with bad
// credentials grows the audit log by two records (its first refusal and
// one summary with the count), is answered 429 once it has used up its
// refusals, and shows in full in the observer (metrics); a valid client
// keeps being served during the flood. Before, every refusal appended a
// synced record (about 840 a second from one client, 28 GB a day).
func TestHostileDenialFlood(t *testing.T) {
	// One refusal every 1000 s after the burst: the flood, whatever the
	// machine's speed, outruns it.
	f := newFloodAPI(t, 0.001)
	srv := httptest.NewServer(f.api)
	defer srv.Close()
	// Flooders send a request for each token of budget. The valid client
	// adds perValid tokens before each of its requests and waits until a
	// flood request has been answered, so each valid request is sent
	// while flood requests are in flight, and the flood is bounded.
	const flooders, valids, perValid = 8, 200, 50
	budget := make(chan struct{}, valids*perValid)
	progress := make(chan struct{}, 1)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range flooders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := srv.Client()
			j := 0
			for range budget {
				sent.Add(1)
				if code := f.get(t, c, srv.URL, floodToken(i, j)); code != 401 && code != 429 {
					t.Errorf("flood request answered %d", code)
				}
				j++
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	// The valid client calls from the flooders' own address (loopback).
	valid := srv.Client()
	for i := range valids {
		for range perValid {
			budget <- struct{}{}
		}
		<-progress
		if code := f.get(t, valid, srv.URL, tokAdmin); code != 200 {
			t.Errorf("valid request %d during the flood answered %d", i, code)
			break
		}
	}
	close(budget)
	wg.Wait()
	srv.Close()
	f.api.Close() // writes the pending summary

	total := int(sent.Load())
	f.mu.Lock()
	refused, limited := f.statuses[401]+f.statuses[429], f.statuses[429]
	recorded, coalesced, rateLimited := f.denials[server.DenialRecorded], f.denials[server.DenialCoalesced], f.denials[server.DenialRateLimited]
	f.mu.Unlock()
	if refused != total || recorded+coalesced+rateLimited != total || rateLimited != limited {
		t.Fatalf("observed %d refusals (%d answered 429), outcomes %d/%d/%d; want all %d, each with its outcome", refused, limited, recorded, coalesced, rateLimited, total)
	}
	if limited < total-server.DefaultDenialBurst-1 {
		t.Fatalf("%d of %d refused requests were answered 429, want all but the burst of %d", limited, total, server.DefaultDenialBurst)
	}
	recs := f.deniedRecords(t)
	if len(recs) != 2 {
		t.Fatalf("%d denied records for one flooding client in one window, want 2 (its first refusal and a summary)", len(recs))
	}
	if want := fmt.Sprintf("%d more refused requests", total-1); !strings.Contains(recs[1].Detail, want) || recs[1].Initiator != "unauthenticated:127.0.0.1" {
		t.Fatalf("summary %q by %s, want %q", recs[1].Detail, recs[1].Initiator, want)
	}
}

// TestHostileDenialsFromManyAddresses: refusals from more addresses than
// the per-window cap of individual records still grow the audit log by a
// bounded number of records, and every refusal is counted in one of them.
func TestHostileDenialsFromManyAddresses(t *testing.T) {
	f := newFloodAPI(t, server.DefaultDenialRate)
	const addrs, each = 600, 3
	for i := range addrs {
		for range each {
			if code := f.serve(fmt.Sprintf("10.%d.%d.1:1234", i/250, i%250), ""); code != 401 {
				t.Fatalf("answered %d", code)
			}
		}
	}
	f.api.Close()
	recs := f.deniedRecords(t)
	const maxRecords = 200 // the per-window cap of individual records
	if len(recs) > 2*maxRecords+1 {
		t.Fatalf("%d denied records, want at most %d", len(recs), 2*maxRecords+1)
	}
	counted := 0
	re := regexp.MustCompile(`^(\d+) more refused requests`)
	for _, r := range recs {
		if m := re.FindStringSubmatch(r.Detail); m != nil {
			n, _ := strconv.Atoi(m[1])
			counted += n
		} else {
			counted++
		}
	}
	if counted != addrs*each {
		t.Fatalf("the records account for %d refusals, want %d", counted, addrs*each)
	}
}
