package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/clerkfake"
	"github.com/rotor-dev/rotor/notify"
)

// hookReceiver is a webhook receiver on loopback that keeps every
// delivery.
type hookReceiver struct {
	*httptest.Server
	mu         sync.Mutex
	failFirst  int // answer 503 to this many requests first
	refused    int
	headers    []http.Header
	bodies     []string
	deliveries []notify.CloudEvent
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	h := &hookReceiver{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ce notify.CloudEvent
		if err := json.Unmarshal(b, &ce); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		if h.refused < h.failFirst {
			h.refused++
			h.mu.Unlock()
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		h.headers, h.bodies, h.deliveries = append(h.headers, r.Header.Clone()), append(h.bodies, string(b)), append(h.deliveries, ce)
		h.mu.Unlock()
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) kinds() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ks []string
	for _, d := range h.deliveries {
		ks = append(ks, string(d.Data.Kind))
	}
	return ks
}

// deadURL returns a loopback URL nothing listens on: a receiver that is
// down.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + "/services/T0/B0/slacksecretpath"
}

// notifyConfig appends a notify block to dir's rotor.yaml: a signed
// webhook to hook for the given events, and a Slack target whose URL (in
// $SLACK_URL) is down. Retries are quick so that the test is short.
func notifyConfig(t *testing.T, dir, hook string, events string) {
	t.Helper()
	path := filepath.Join(dir, "rotor.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, `notify:
  attempts: 2
  min_backoff: 1ms
  max_backoff: 2ms
  targets:
    - name: siem
      type: webhook
      url: `+hook+`
      events: [`+events+`]
      signing_key_file: .rotor/notify.key
    - name: ops
      type: slack
      url_env: SLACK_URL
`...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

type auditLine struct {
	Action, Status, Secret, Detail string
	KeyID                          string `json:"key_id"`
}

func auditLines(t *testing.T, dir string) []auditLine {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, ".rotor", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	// A daemon may be appending: a last line without its newline is not
	// written yet.
	text := string(b)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	var out []auditLine
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			continue
		}
		var r auditLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// deliveries returns the audit records of notifications, by status.
func deliveries(t *testing.T, dir string) (succeeded, failed []auditLine) {
	for _, r := range auditLines(t, dir) {
		switch {
		case r.Action != notify.ActionDelivery:
		case r.Status == "succeeded":
			succeeded = append(succeeded, r)
		default:
			failed = append(failed, r)
		}
	}
	return succeeded, failed
}

// TestNotificationsFromCLI: rotate and rollback through the CLI notify a
// signed webhook receiver of the kinds it selected, while the Slack
// receiver is down: the commands still exit 0, each delivery, made or
// given up, is an audit record, the chain verifies, and no payload,
// output or record holds a key value.
func TestNotificationsFromCLI(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	hook := newHookReceiver(t)
	notifyConfig(t, dir, hook.URL, "rotated, rolled_back, revoked")
	slack := deadURL(t)
	env := []string{"SLACK_URL=" + slack}
	var outs []procResult
	for _, args := range [][]string{{"rotate", "demo"}, {"rotate", "demo"}, {"rollback", "demo"}, {"revoke", "demo", "--force"}} {
		r := rotor(t, dir, env, args...)
		if r.code != 0 {
			t.Fatalf("rotor %v: exit %d, want 0 with a receiver down\n%s", args, r.code, r.stderr)
		}
		outs = append(outs, r)
	}
	if got := strings.Join(hook.kinds(), ","); got != "rotated,rotated,rolled_back,revoked" {
		t.Fatalf("webhook got %q, want rotated twice, rolled_back, revoked", got)
	}
	key, err := notify.LoadOrCreateKey(filepath.Join(dir, ".rotor", "notify.key"))
	if err != nil {
		t.Fatal(err)
	}
	hook.mu.Lock()
	for i, b := range hook.bodies {
		if err := notify.Verify(key, hook.headers[i], []byte(b), time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery %d does not verify with the key file: %v", i, err)
		}
	}
	bodies := strings.Join(hook.bodies, "\n")
	hook.mu.Unlock()
	if st := status(t, dir); !strings.Contains(bodies, st.Current.KeyID) {
		t.Errorf("no delivery names the current key id %s", st.Current.KeyID)
	}

	ok, failed := deliveries(t, dir)
	if len(ok) != 4 {
		t.Errorf("%d succeeded delivery records, want 4: %+v", len(ok), ok)
	}
	if len(failed) != 4 {
		t.Fatalf("%d failed delivery records, want 4 (every event to the Slack target that is down): %+v", len(failed), failed)
	}
	for _, f := range failed {
		if !strings.Contains(f.Detail, "to ops (slack)") || !strings.Contains(f.Detail, "not delivered after 2 tries") {
			t.Errorf("failed record %q does not say which target gave up after how many tries", f.Detail)
		}
	}
	for _, r := range outs {
		if !strings.Contains(r.stderr, "rotor: warning: notification") || strings.Contains(r.stderr+r.stdout, "slacksecretpath") {
			t.Errorf("stderr %q: want a warning about the failed delivery that does not repeat the Slack URL", r.stderr)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".rotor", "audit.log")); strings.Contains(string(b), "slacksecretpath") {
		t.Error("the audit log repeats the Slack URL")
	}
	mustRotor(t, dir, "audit", "verify")
	leakCheck(t, dir, append(outs, procResult{stdout: bodies}))

	// rotor doctor has a line per target, a problem for the unset URL.
	doc := rotor(t, dir, nil, "doctor")
	if doc.code == 0 || !strings.Contains(doc.stdout+doc.stderr, "$SLACK_URL is not set") {
		t.Errorf("doctor without $SLACK_URL: exit %d\n%s%s\nwant a problem naming the variable", doc.code, doc.stdout, doc.stderr)
	}
	if doc = rotor(t, dir, env, "doctor"); doc.code != 0 || !strings.Contains(doc.stdout, "siem") || !strings.Contains(doc.stdout, "ops") {
		t.Errorf("doctor: exit %d\n%s%s\nwant both targets fine", doc.code, doc.stdout, doc.stderr)
	}
}

// TestNotificationsFromDaemon: the daemon's scheduled rotation reaches
// the webhook receiver, which refuses the first try (503): the daemon
// retries, and the delivery is audited as made on the second try. Only
// the kind the target selected is sent.
func TestNotificationsFromDaemon(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	hook := newHookReceiver(t)
	hook.failFirst = 1
	notifyConfig(t, dir, hook.URL, "rotated")
	// $SLACK_URL is not set: the Slack deliveries fail, the daemon runs.
	_, cmd, logs := startDaemon(t, dir, "daemon", "--interval", "1s")
	waitFor(t, "the daemon's rotation to be notified and the delivery audited", func() bool {
		ok, _ := deliveries(t, dir)
		return len(hook.kinds()) >= 1 && len(ok) >= 1
	})
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("daemon exit: %v\n%s", err, logs)
	}
	for _, k := range hook.kinds() {
		if k != "rotated" {
			t.Errorf("webhook got %q, which it did not select", k)
		}
	}
	hook.mu.Lock()
	d := hook.deliveries[0]
	hook.mu.Unlock()
	if d.Data.Initiator != "system" || d.Subject != "demo" {
		t.Errorf("delivery %+v, want the daemon (system) rotating demo", d)
	}
	if ok, _ := deliveries(t, dir); !strings.Contains(ok[0].Detail, "rotated to siem (webhook)") || !strings.Contains(ok[0].Detail, "delivered on try 2") {
		t.Errorf("first delivery record %q, want siem's delivery on the second try", ok[0].Detail)
	}
	mustRotor(t, dir, "audit", "verify")
	leakCheck(t, dir, []procResult{{stdout: logs.String()}, {stdout: strings.Join(hook.bodies, "\n")}})
}

// TestNotifyChainBroken: a command that finds the audit chain broken
// (rotor audit verify, exit 5) notifies audit_chain_broken.
func TestNotifyChainBroken(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	hook := newHookReceiver(t)
	notifyConfig(t, dir, hook.URL, "audit_chain_broken")
	env := []string{"SLACK_URL=" + deadURL(t)}
	if r := rotor(t, dir, env, "rotate", "demo"); r.code != 0 {
		t.Fatalf("rotate: exit %d\n%s", r.code, r.stderr)
	}
	if len(hook.kinds()) != 0 {
		t.Fatalf("webhook got %q before the chain broke; it selected audit_chain_broken only", hook.kinds())
	}
	log := filepath.Join(dir, ".rotor", "audit.log")
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	tampered := strings.Replace(string(b), `"initiator":"user:tester"`, `"initiator":"user:mallory"`, 1)
	if tampered == string(b) {
		t.Fatal("nothing to tamper with")
	}
	if err := os.WriteFile(log, []byte(tampered), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := rotor(t, dir, env, "audit", "verify"); r.code != 5 {
		t.Fatalf("audit verify: exit %d, want 5\n%s", r.code, r.stderr)
	}
	if got := hook.kinds(); len(got) != 1 || got[0] != "audit_chain_broken" {
		t.Fatalf("webhook got %q, want audit_chain_broken", got)
	}
}

// TestNotifyActionRequired: a Clerk instance key in manual mode with no
// key staged cannot rotate (exit 6); the webhook hears action_required
// with the operator's steps.
func TestNotifyActionRequired(t *testing.T) {
	fake := clerkfake.New(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	writeConfigWithout(t, dir, `  - name: clerk-secret-key
    provider: clerk
    clerk: {api_url: `+fake.URL()+`}
`)
	hook := newHookReceiver(t)
	notifyConfig(t, dir, hook.URL, "action_required")
	r := rotor(t, dir, []string{"SLACK_URL=" + deadURL(t)}, "rotate", "clerk-secret-key")
	if r.code != exitActionRequired {
		t.Fatalf("rotate: exit %d, want %d\n%s", r.code, exitActionRequired, r.stderr)
	}
	if got := hook.kinds(); len(got) != 1 || got[0] != "action_required" {
		t.Fatalf("webhook got %q, want action_required", got)
	}
	hook.mu.Lock()
	d := hook.deliveries[0]
	hook.mu.Unlock()
	if d.Subject != "clerk-secret-key" || len(d.Data.Steps) == 0 {
		t.Errorf("delivery %+v, want the secret and the operator's steps", d.Data)
	}
}
