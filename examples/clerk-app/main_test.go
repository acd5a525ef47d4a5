package main

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/internal/clerkfake"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.TrimSpace(string(b))
}

func TestUsersSurvivesADeletedPrimaryKey(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	primary, secondary := fake.AddKey(), fake.AddKey()
	var logs bytes.Buffer
	a := newApp([]string{primary, secondary}, fake.URL(), fake.Client(), slog.New(slog.NewTextHandler(&logs, nil)))
	h := a.routes()

	steps := []struct {
		name       string
		before     func()
		wantStatus int
		wantBody   string
		wantCalls  int // GET /v1/users requests this step makes
	}{
		{"both keys valid", func() {}, 200, `{"total_count":3}`, 1},
		{"primary deleted at Clerk", func() { fake.DeleteKey(primary) }, 200, `{"total_count":3}`, 2},
		{"both deleted", func() { fake.DeleteKey(secondary) }, 502, `{"error":"Clerk is unavailable"}`, 2},
	}
	for _, s := range steps {
		s.before()
		calls := fake.Requests("GET /v1/users")
		status, body := get(t, h, "/users")
		if status != s.wantStatus || body != s.wantBody {
			t.Fatalf("%s: GET /users = %d %s, want %d %s", s.name, status, body, s.wantStatus, s.wantBody)
		}
		if got := fake.Requests("GET /v1/users") - calls; got != s.wantCalls {
			t.Errorf("%s: Clerk calls = %d, want %d", s.name, got, s.wantCalls)
		}
	}
	if out := logs.String(); strings.Contains(out, primary) || strings.Contains(out, secondary) {
		t.Fatalf("a key was logged:\n%s", out)
	}
}

func TestOutageIsNotRetriedWithTheSecondaryKey(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	a := newApp([]string{fake.Key(), fake.AddKey()}, fake.URL(), fake.Client(), slog.New(slog.DiscardHandler))
	fake.FailNext(1, http.StatusServiceUnavailable)
	if status, _ := get(t, a.routes(), "/users"); status != http.StatusBadGateway {
		t.Fatalf("GET /users during an outage = %d, want 502", status)
	}
	if n := fake.Requests("GET /v1/users"); n != 1 {
		t.Errorf("Clerk calls = %d, want 1: a 503 says nothing about the key", n)
	}
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	a := newApp([]string{"sk_test_x"}, "http://127.0.0.1:1", http.DefaultClient, slog.New(slog.DiscardHandler))
	a.setKeys([]string{"sk_test_x"}, []string{"0123456789abcdef"})
	if status, body := get(t, a.routes(), "/healthz"); status != 200 || body != `{"key_ids":{"current":"0123456789abcdef","previous":""},"keys":1,"status":"ok"}` {
		t.Fatalf("GET /healthz = %d %s", status, body)
	}
}

func TestKeysFromEnv(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		env     map[string]string
		want    []string
		wantErr bool
	}{
		"primary and secondary": {map[string]string{"CLERK_SECRET_KEY_PRIMARY": "a", "CLERK_SECRET_KEY_SECONDARY": "b", "CLERK_SECRET_KEY": "c"}, []string{"a", "b"}, false},
		"single key fallback":   {map[string]string{"CLERK_SECRET_KEY": "c"}, []string{"c"}, false},
		"fallback + secondary":  {map[string]string{"CLERK_SECRET_KEY": "c", "CLERK_SECRET_KEY_SECONDARY": "b"}, []string{"c", "b"}, false},
		"secondary equals":      {map[string]string{"CLERK_SECRET_KEY_PRIMARY": "a", "CLERK_SECRET_KEY_SECONDARY": "a"}, []string{"a"}, false},
		"nothing":               {map[string]string{"CLERK_SECRET_KEY_SECONDARY": "b"}, nil, true},
	}
	for name, tt := range tests {
		got, _, err := keysFromEnv(func(k string) string { return tt.env[k] })
		if (err != nil) != tt.wantErr || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: keysFromEnv = %v, %v; want %v", name, got, err, tt.want)
		}
	}
}

// TestReloadFromEnvFile: the app picks up a new key pair from the env file
// rotor run rewrites, and its health reports the new key ids.
func TestReloadFromEnvFile(t *testing.T) {
	t.Parallel()
	fake := clerkfake.New(t)
	old, next := fake.Key(), fake.AddKey()
	a := newApp([]string{old}, fake.URL(), fake.Client(), slog.New(slog.DiscardHandler))
	a.setKeys([]string{old}, []string{"id-old"})
	envFile := t.TempDir() + "/keys.env"
	content := fmt.Sprintf("# written by rotor run\nCLERK_SECRET_KEY_PRIMARY=%q\nCLERK_SECRET_KEY_SECONDARY=%q\nCLERK_SECRET_KEY_KEY_ID=%q\nCLERK_SECRET_KEY_SECONDARY_KEY_ID=%q\n", next, old, "id-new", "id-old")
	if err := os.WriteFile(envFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.reload(envFile); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, a.routes(), "/healthz")
	if !strings.Contains(body, `"current":"id-new"`) || !strings.Contains(body, `"previous":"id-old"`) {
		t.Fatalf("health after reload: %s", body)
	}
	fake.DeleteKey(old)
	if status, _ := get(t, a.routes(), "/users"); status != 200 {
		t.Fatalf("GET /users with the reloaded primary = %d", status)
	}
	if strings.Contains(body, old) || strings.Contains(body, next) {
		t.Fatal("health leaks a key")
	}
	os.WriteFile(envFile, []byte("CLERK_SECRET_KEY_PRIMARY=unquoted\n"), 0o600)
	if err := a.reload(envFile); err == nil {
		t.Fatal("a malformed env file was accepted")
	}
	if _, body := get(t, a.routes(), "/healthz"); !strings.Contains(body, "id-new") {
		t.Fatal("a failed reload replaced the keys")
	}
}
