package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/server/servertest"
)

// startDaemon runs `rotor daemon` (or serve) in dir on a free loopback
// port and returns its base URL once it listens.
func startDaemon(t *testing.T, dir string, args ...string) (string, *exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ready := filepath.Join(dir, "api.ready")
	cmd, logs := startBackground(t, dir, []string{"ROTOR_READY_FILE=" + ready}, append(args, "--listen", "127.0.0.1:0")...)
	var addr string
	waitFor(t, "the API to listen", func() bool {
		b, err := os.ReadFile(ready)
		addr = string(b)
		return err == nil && addr != ""
	})
	return "http://" + addr, cmd, logs
}

// call sends a request to a running rotor's API; the answer must match
// the OpenAPI document (servertest.Transport).
func call(t *testing.T, method, url, token, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Transport: servertest.Transport(t, nil)}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// apiConfig writes rotor.yaml with a server block holding hashed tokens
// for a ci, a viewer and an app caller.
func apiConfig(t *testing.T, dir string) (ci, viewer, app string) {
	t.Helper()
	mk := func() string {
		tok, err := authz.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ci, viewer, app = mk(), mk(), mk()
	cfg := defaultConfig + "server:\n  tokens:\n" +
		"    - {name: deploy-bot, role: ci, hash: " + authz.HashToken(ci) + "}\n" +
		"    - {name: dashboard, role: viewer, hash: " + authz.HashToken(viewer) + "}\n" +
		"    - {name: web, role: app, secrets: [demo], hash: " + authz.HashToken(app) + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return ci, viewer, app
}

// TestDaemonRotatesAndServes: the daemon rotates the never-rotated demo
// secret on its first tick, serves the API with role checks (a viewer may
// read status but not rotate, and the refusal is audited), counts the
// rotation and the refusals in /metrics, and exits cleanly on SIGTERM.
func TestDaemonRotatesAndServes(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	ci, viewer, app := apiConfig(t, dir)
	base, cmd, logs := startDaemon(t, dir, "daemon", "--interval", "1s")

	waitFor(t, "the first scheduled rotation", func() bool {
		code, body := call(t, "GET", base+"/v1/secrets/demo", viewer, "")
		return code == 200 && strings.Contains(body, `"current":{"key_id"`) && strings.Contains(body, `"rotation":null`)
	})
	if code, body := call(t, "POST", base+"/v1/secrets/demo/rotate", viewer, ""); code != 403 {
		t.Fatalf("viewer rotate = %d %s, want 403", code, body)
	}
	if code, body := call(t, "POST", base+"/v1/secrets/demo/rotate", ci, ""); code != 200 {
		t.Fatalf("ci rotate = %d %s, want 200", code, body)
	}
	if code, _ := call(t, "GET", base+"/v1/secrets/demo", "", ""); code != 401 {
		t.Fatalf("unauthenticated status = %d, want 401", code)
	}
	if code, _ := call(t, "POST", base+"/v1/secrets/demo/rollback", app, ""); code != 403 {
		t.Fatalf("app rollback = %d, want 403", code)
	}
	_, metrics := call(t, "GET", base+"/metrics", viewer, "")
	if !strings.Contains(metrics, `rotor_rotations_total{result="success",secret="demo"} 2`) {
		t.Fatalf("metrics do not count two rotations:\n%s", grepLines(metrics, "rotor_rotations_total"))
	}
	if !strings.Contains(metrics, `rotor_api_denied_total{outcome="recorded"} 3`) {
		t.Fatalf("metrics do not count three refusals:\n%s", grepLines(metrics, "rotor_api_denied_total"))
	}
	if code, _ := call(t, "GET", base+"/readyz", "", ""); code != 200 {
		t.Fatalf("readyz = %d", code)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, logs)
	}
	tail := mustRotor(t, dir, "audit", "tail", "-n", "0", "-o", "json")
	var denied int
	for _, line := range strings.Split(strings.TrimSpace(tail.stdout), "\n") {
		var r struct{ Action, Status, Initiator string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Status == "denied" {
			denied++
			if r.Initiator == "" {
				t.Fatalf("denied record without the caller: %s", line)
			}
		}
	}
	if denied != 3 {
		t.Fatalf("%d denied records, want 3 (viewer rotate, anonymous status, app rollback)", denied)
	}
	if !strings.Contains(tail.stdout, `"initiator":"system"`) || !strings.Contains(tail.stdout, `"initiator":"token:deploy-bot"`) {
		t.Fatalf("audit lacks the daemon's or the CI caller's identity:\n%s", tail.stdout)
	}
	mustRotor(t, dir, "audit", "verify")
	leakCheck(t, dir, []procResult{{stdout: logs.String()}, tail}, ci, viewer, app)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
