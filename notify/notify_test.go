package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
)

// receiver is a local HTTP receiver that records every request and
// answers with the statuses in answers, then 200.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []*http.Request
	bodies  [][]byte
	answers []int
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{answers: answers}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.bodies = append(r.bodies, b)
		code := http.StatusOK
		if len(r.answers) > 0 {
			code, r.answers = r.answers[0], r.answers[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(code)
		if code == http.StatusNotFound {
			io.WriteString(w, "no_service")
		} else if code == http.StatusOK {
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) got() ([]*http.Request, [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs), slices.Clone(r.bodies)
}

// auditLog collects the audit events a Notifier records.
type auditLog struct {
	mu     sync.Mutex
	events []audit.Event
}

// record keeps d as cmd/rotor records it.
func (l *auditLog) record(_ context.Context, d Delivery) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := audit.Event{Action: ActionDelivery, Secret: d.Event.Secret, KeyID: d.Event.KeyID, Status: audit.StatusSucceeded, Detail: d.Detail()}
	if d.Err != nil {
		e.Status = audit.StatusFailed
	}
	l.events = append(l.events, e)
	return nil
}

func (l *auditLog) all() []audit.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// fastOptions retry quickly, so a test with a failing receiver is short.
func fastOptions(targets ...TargetOptions) Options {
	return Options{Targets: targets, Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}.WithDefaults()
}

func newNotifier(t *testing.T, o Options, d Deps) (*Notifier, *auditLog) {
	t.Helper()
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	log := &auditLog{}
	d.Audit = log.record
	n, err := New(o, d)
	if err != nil {
		t.Fatal(err)
	}
	return n, log
}

var rotated = Event{Kind: KindRotated, Secret: "clerk", KeyID: "3f2a9c1d0b8e7f6a", Operation: "20261130T050000Z-abcd", Initiator: "user:ana", Summary: "clerk rotated: current key is 3f2a9c1d0b8e7f6a"}

// Slack's incoming webhooks (https://api.slack.com/messaging/webhooks)
// take a POST of a JSON body with Content-Type application/json whose
// "text" is the message (and the fallback when "blocks" are given);
// "blocks" are Block Kit blocks, a section holding a text object of type
// mrkdwn (https://api.slack.com/reference/block-kit/blocks#section).
func TestSlackPayload(t *testing.T) {
	r := newReceiver(t)
	n, log := newNotifier(t, fastOptions(TargetOptions{Name: "ops", Type: TypeSlack, URL: r.URL}), Deps{})
	ev := Event{Kind: KindActionRequired, Secret: "clerk", Operation: "op1", Summary: "clerk: operator action required: create a key <now>",
		Steps: []string{"Create a secret key in the Clerk Dashboard", "rotor stage clerk"}}
	n.Notify(ev)
	n.Close(t.Context())
	reqs, bodies := r.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	if ct := reqs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	dec := json.NewDecoder(strings.NewReader(string(bodies[0])))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("body %s: %v", bodies[0], err)
	}
	if !strings.Contains(msg.Text, "operator action required") || !strings.Contains(msg.Text, "&lt;now&gt;") {
		t.Errorf("text = %q, want the summary with <, > escaped as Slack requires", msg.Text)
	}
	if len(msg.Blocks) < 2 {
		t.Fatalf("blocks = %+v, want the summary and the steps", msg.Blocks)
	}
	for _, b := range msg.Blocks {
		if b.Type != "section" || b.Text.Type != "mrkdwn" || b.Text.Text == "" {
			t.Errorf("block %+v is not a section with mrkdwn text", b)
		}
	}
	if !strings.Contains(msg.Blocks[1].Text.Text, "rotor stage clerk") {
		t.Errorf("steps block = %q", msg.Blocks[1].Text.Text)
	}
	if ev := log.all(); len(ev) != 1 || ev[0].Action != ActionDelivery || ev[0].Status != audit.StatusSucceeded || ev[0].Secret != "clerk" {
		t.Errorf("audit = %+v, want one succeeded delivery", ev)
	}
}

// The CloudEvents 1.0 spec (https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md#required-attributes)
// requires id, source (a non-empty URI-reference), specversion ("1.0")
// and type, all non-empty strings; source+id must be unique per event.
// The JSON format (formats/json-format.md §3) puts the attributes at the
// top level of one JSON object, media type application/cloudevents+json;
// time is an RFC 3339 timestamp; data holds the JSON value as is.
func TestCloudEventAttributes(t *testing.T) {
	r := newReceiver(t)
	n, _ := newNotifier(t, fastOptions(TargetOptions{Type: TypeWebhook, URL: r.URL}), Deps{})
	n.Notify(rotated)
	n.Notify(rotated)
	n.Close(t.Context())
	reqs, bodies := r.got()
	if len(reqs) != 2 {
		t.Fatalf("%d requests, want 2", len(reqs))
	}
	ids := map[string]bool{}
	for i, b := range bodies {
		if ct := reqs[i].Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/cloudevents+json") {
			t.Errorf("Content-Type = %q", ct)
		}
		var ce map[string]any
		if err := json.Unmarshal(b, &ce); err != nil {
			t.Fatal(err)
		}
		for _, attr := range []string{"id", "source", "specversion", "type"} {
			if s, _ := ce[attr].(string); s == "" {
				t.Errorf("required attribute %s missing or empty in %s", attr, b)
			}
		}
		if ce["specversion"] != "1.0" || ce["type"] != "dev.rotor.rotated" || ce["subject"] != "clerk" {
			t.Errorf("attributes of %s", b)
		}
		if _, err := time.Parse(time.RFC3339, ce["time"].(string)); err != nil {
			t.Errorf("time: %v", err)
		}
		data, _ := ce["data"].(map[string]any)
		if data["kind"] != "rotated" || data["key_id"] != rotated.KeyID || data["operation"] != rotated.Operation {
			t.Errorf("data = %v", data)
		}
		ids[ce["id"].(string)] = true
	}
	if len(ids) != 2 {
		t.Errorf("ids %v: two events share an id", ids)
	}
}

func TestSignatureVerifies(t *testing.T) {
	r := newReceiver(t)
	keyFile := filepath.Join(t.TempDir(), "notify.key")
	n, _ := newNotifier(t, fastOptions(TargetOptions{Type: TypeWebhook, URL: r.URL, SigningKeyFile: keyFile}), Deps{})
	if _, err := os.Stat(keyFile); err == nil {
		t.Error("New created the key file; it is created at the first delivery")
	}
	n.Notify(rotated)
	n.Close(t.Context())
	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("the key file was not created: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	reqs, bodies := r.got()
	if len(reqs) != 1 {
		t.Fatalf("%d requests", len(reqs))
	}
	// The receiver has the key from the file, as an operator hands it over.
	key, err := LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	h, body, now := reqs[0].Header, bodies[0], time.Now()
	var ce CloudEvent
	if err := json.Unmarshal(body, &ce); err != nil {
		t.Fatal(err)
	}
	if h.Get(HeaderID) != ce.ID {
		t.Errorf("webhook-id %q, want the event id %q", h.Get(HeaderID), ce.ID)
	}
	if err := Verify(key, h, body, now, 5*time.Minute); err != nil {
		t.Fatalf("receiver cannot verify the delivery: %v", err)
	}
	tests := []struct {
		name   string
		key    []byte
		body   []byte
		now    time.Time
		reason string
	}{
		{"altered body", key, []byte(strings.Replace(string(body), "clerk", "clerx", 1)), now, "a changed body must not verify"},
		{"other key", []byte("0123456789abcdef0123456789abcdef"), body, now, "only the key holder can sign"},
		{"replayed later", key, body, now.Add(time.Hour), "an old delivery must be refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(tt.key, h, tt.body, tt.now, 5*time.Minute); !errors.Is(err, ErrBadSignature) {
				t.Errorf("Verify = %v, want ErrBadSignature: %s", err, tt.reason)
			}
		})
	}
	// The same file gives the same key: it is created once.
	again, err := LoadOrCreateKey(keyFile)
	if err != nil || string(again) != string(key) {
		t.Errorf("second load = %x, %v; want the key created first", again, err)
	}
}

func TestLooseKeyFileRefused(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "notify.key")
	if _, err := LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(keyFile); err == nil || !strings.Contains(err.Error(), "0600") {
		t.Errorf("err = %v, want a refusal of mode 0644", err)
	}
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name       string
		answers    []int
		wantTries  int
		wantStatus string
		wantDetail string
	}{
		{"5xx retried until accepted", []int{503, 502}, 3, audit.StatusSucceeded, "delivered on try 3"},
		{"429 retried", []int{429}, 2, audit.StatusSucceeded, "delivered on try 2"},
		{"5xx until the tries are spent", []int{503, 503, 503, 503}, 3, audit.StatusFailed, "not delivered after 3 tries: HTTP 503"},
		{"4xx is final", []int{404}, 1, audit.StatusFailed, "not delivered after 1 tries: HTTP 404 no_service"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.answers...)
			n, log := newNotifier(t, fastOptions(TargetOptions{Name: "hook", Type: TypeWebhook, URL: r.URL}), Deps{})
			n.Notify(rotated)
			n.Close(t.Context())
			if reqs, _ := r.got(); len(reqs) != tt.wantTries {
				t.Errorf("%d tries, want %d", len(reqs), tt.wantTries)
			}
			ev := log.all()
			if len(ev) != 1 || ev[0].Status != tt.wantStatus || !strings.Contains(ev[0].Detail, tt.wantDetail) {
				t.Fatalf("audit = %+v, want one %s record saying %q", ev, tt.wantStatus, tt.wantDetail)
			}
			if !strings.HasPrefix(ev[0].Detail, "rotated to hook (webhook), delivery msg_") {
				t.Errorf("detail %q does not name the kind, target and delivery", ev[0].Detail)
			}
		})
	}
}

// A receiver that is down: every try fails, the delivery is recorded as
// failed, and neither the record nor the warning repeats the URL, which
// for Slack is a secret.
func TestReceiverDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/services/T000/B000/XXXXsecretXXXX"
	ln.Close() // nothing listens there now
	var warnings []string
	var mu sync.Mutex
	n, log := newNotifier(t, fastOptions(TargetOptions{Name: "ops", Type: TypeSlack, URLEnv: "SLACK_URL"}), Deps{
		Getenv: func(k string) string { return map[string]string{"SLACK_URL": url}[k] },
		Warnf: func(f string, a ...any) {
			mu.Lock()
			defer mu.Unlock()
			warnings = append(warnings, fmt.Sprintf(f, a...))
		},
	})
	n.Notify(rotated)
	n.Close(t.Context())
	ev := log.all()
	if len(ev) != 1 || ev[0].Status != audit.StatusFailed || !strings.Contains(ev[0].Detail, "not delivered after 3 tries") {
		t.Fatalf("audit = %+v, want one failed delivery after 3 tries", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warnings) != 1 {
		t.Errorf("warnings = %q, want one", warnings)
	}
	for _, s := range append(warnings, ev[0].Detail) {
		if strings.Contains(s, "XXXXsecretXXXX") {
			t.Errorf("%q repeats the webhook URL", s)
		}
	}
}

// Close of a command holds its exit for at most ExitWait: a delivery
// retrying beyond it is given up and recorded as failed.
func TestExitWaitBoundsRetries(t *testing.T) {
	r := newReceiver(t, slices.Repeat([]int{503}, 1000)...)
	o := fastOptions(TargetOptions{Type: TypeWebhook, URL: r.URL})
	o.Attempts, o.ExitWait = 1000, 50*time.Millisecond
	n, log := newNotifier(t, o, Deps{})
	n.Notify(rotated)
	n.Close(t.Context())
	if ev := log.all(); len(ev) != 1 || ev[0].Status != audit.StatusFailed {
		t.Fatalf("audit = %+v, want one failed delivery", ev)
	}
	if reqs, _ := r.got(); len(reqs) >= 1000 {
		t.Errorf("%d tries: ExitWait did not stop the retries", len(reqs))
	}
}

// Close gives up on deliveries still retrying when its context ends.
func TestCloseGivesUp(t *testing.T) {
	r := newReceiver(t, slices.Repeat([]int{503}, 1000)...)
	o := fastOptions(TargetOptions{Type: TypeWebhook, URL: r.URL})
	o.Attempts = 1000
	n, log := newNotifier(t, o, Deps{LongRunning: true})
	n.Notify(rotated)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	n.Close(ctx)
	ev := log.all()
	if len(ev) != 1 || ev[0].Status != audit.StatusFailed || !strings.Contains(ev[0].Detail, "stopped retrying") {
		t.Fatalf("audit = %+v, want one delivery given up at exit", ev)
	}
	n.Notify(rotated) // after Close: nothing
	if len(log.all()) != 1 {
		t.Error("Notify after Close delivered")
	}
}

func TestFilters(t *testing.T) {
	all, some := newReceiver(t), newReceiver(t)
	n, _ := newNotifier(t, fastOptions(
		TargetOptions{Name: "all", Type: TypeWebhook, URL: all.URL},
		TargetOptions{Name: "failures", Type: TypeWebhook, URL: some.URL, Events: []string{"rotation_failed", "audit_chain_broken"}},
	), Deps{})
	for _, k := range Kinds {
		n.Notify(Event{Kind: k, Secret: "s", Summary: string(k)})
	}
	n.Close(t.Context())
	kinds := func(r *receiver) []string {
		_, bodies := r.got()
		var ks []string
		for _, b := range bodies {
			var ce CloudEvent
			if err := json.Unmarshal(b, &ce); err != nil {
				t.Fatal(err)
			}
			ks = append(ks, string(ce.Data.Kind))
		}
		slices.Sort(ks)
		return ks
	}
	if got := kinds(all); len(got) != len(Kinds) {
		t.Errorf("unfiltered target got %v, want every kind", got)
	}
	if got := kinds(some); !slices.Equal(got, []string{"audit_chain_broken", "rotation_failed"}) {
		t.Errorf("filtered target got %v, want only its events", got)
	}
}

func TestClassify(t *testing.T) {
	are := &provider.ActionRequiredError{Action: "create a key", Steps: []string{"open the Dashboard", "rotor stage clerk"}}
	tests := []struct {
		name  string
		event rotation.Event
		want  Kind // "" for none
	}{
		{"rotation finished", rotation.Event{Action: "rotate.finish", Status: "succeeded", Op: "o", End: rotation.EndSucceeded}, KindRotated},
		{"rotation recovered", rotation.Event{Action: "rotate", Status: "succeeded", Op: "o", End: rotation.EndRecovered}, KindRotated},
		{"step succeeded", rotation.Event{Action: "rotate.promote", Status: "succeeded", Op: "o"}, ""},
		{"started", rotation.Event{Action: "rotate.start", Status: "started", Op: "o"}, ""},
		{"verify failed", rotation.Event{Action: "rotate.verify", Status: "failed", Op: "o", Err: errors.New("x")}, KindRotationFailed},
		{"create failed, resumable", rotation.Event{Action: "rotate.create", Status: "failed", Op: "o", Err: errors.New("503")}, KindRotationFailed},
		{"no key to take", rotation.Event{Action: "rotate.create", Status: "failed", Op: "o", End: rotation.EndFailed, Err: fmt.Errorf("clerk: create: %w", are)}, KindActionRequired},
		{"rolled back", rotation.Event{Action: "rollback", Status: "succeeded", Op: "o", End: rotation.EndSucceeded}, KindRolledBack},
		{"rollback failed", rotation.Event{Action: "rollback.verify", Status: "failed", Op: "o", End: rotation.EndFailed, Err: errors.New("x")}, KindRotationFailed},
		{"revoked", rotation.Event{Action: "revoke", Status: "succeeded", Op: "o", End: rotation.EndSucceeded}, KindRevoked},
		{"revoke failed", rotation.Event{Action: "revoke", Status: "failed", Op: "o", End: rotation.EndFailed, Err: errors.New("issuer 503")}, KindRevokeDue},
		{"revoke needs the operator", rotation.Event{Action: "revoke", Status: "failed", Op: "o", End: rotation.EndFailed, Err: are}, KindActionRequired},
		{"refusal outside an operation", rotation.Event{Action: "revoke", Status: "failed", Err: rotation.ErrNotExpired}, ""},
		{"aborted", rotation.Event{Action: "rotate.abort", Status: "succeeded", Op: "o", End: rotation.EndAborted}, ""},
		{"staged", rotation.Event{Action: "stage", Status: "succeeded", Op: "o", End: rotation.EndSucceeded}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c classifier
			got, ok := c.classify(tt.event, "user:ana", time.Now())
			if !ok {
				got.Kind = ""
			}
			if got.Kind != tt.want {
				t.Errorf("kind = %q, want %q", got.Kind, tt.want)
			}
			if tt.want == KindActionRequired && !slices.Equal(got.Steps, are.Steps) {
				t.Errorf("steps = %q, want the operator's steps", got.Steps)
			}
		})
	}
}

// One notification of a kind per operation: a rotation that fails twice
// before it ends notifies once.
func TestClassifyOncePerOperation(t *testing.T) {
	var c classifier
	fail := rotation.Event{Action: "rotate.test", Status: "failed", Op: "op1", Err: errors.New("x")}
	if _, ok := c.classify(fail, "", time.Now()); !ok {
		t.Fatal("first failure not notified")
	}
	if _, ok := c.classify(fail, "", time.Now()); ok {
		t.Error("second failure of the same operation notified again")
	}
	end := fail
	end.End = rotation.EndFailed
	if _, ok := c.classify(end, "", time.Now()); ok {
		t.Error("terminal failure of the same operation notified again")
	}
	if len(c.sent) != 0 {
		t.Errorf("state kept after the operation ended: %v", c.sent)
	}
	fail.Op = "op2"
	if _, ok := c.classify(fail, "", time.Now()); !ok {
		t.Error("another operation's failure not notified")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		t    TargetOptions
		want string // "" for valid
	}{
		{"slack by env", TargetOptions{Type: TypeSlack, URLEnv: "SLACK_URL"}, ""},
		{"signed webhook", TargetOptions{Type: TypeWebhook, URL: "https://h.example/x", SigningKeyFile: "k"}, ""},
		{"no url", TargetOptions{Type: TypeWebhook}, "exactly one of url and url_env"},
		{"both urls", TargetOptions{Type: TypeWebhook, URL: "https://h.example", URLEnv: "U"}, "exactly one of url and url_env"},
		{"plain http off loopback", TargetOptions{Type: TypeWebhook, URL: "http://h.example/x"}, "loopback"},
		{"unknown type", TargetOptions{Type: "email", URL: "https://h.example"}, "unknown target type"},
		{"unknown event", TargetOptions{Type: TypeWebhook, URL: "https://h.example", Events: []string{"rotatd"}}, `unknown event "rotatd"`},
		{"signed slack", TargetOptions{Type: TypeSlack, URLEnv: "U", SigningKeyEnv: "K"}, "cannot be signed"},
		{"two keys", TargetOptions{Type: TypeWebhook, URL: "https://h.example", SigningKeyEnv: "K", SigningKeyFile: "f"}, "exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Options{Targets: []TargetOptions{tt.t}}.WithDefaults().Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}

// A target whose URL variable is unset does not stop the Notifier (a
// command that sends nothing must run); its deliveries fail, recorded.
func TestURLEnvUnset(t *testing.T) {
	n, log := newNotifier(t, fastOptions(TargetOptions{Name: "ops", Type: TypeSlack, URLEnv: "SLACK_URL"}), Deps{})
	n.Notify(rotated)
	n.Close(t.Context())
	if ev := log.all(); len(ev) != 1 || ev[0].Status != audit.StatusFailed || !strings.Contains(ev[0].Detail, "$SLACK_URL is not set") {
		t.Fatalf("audit = %+v, want one failed delivery naming the unset variable", ev)
	}
}

// A signing key that cannot be read fails the deliveries to its target,
// recorded, and not the Notifier: commands that send nothing still run.
func TestUnreadableKeyFailsDeliveries(t *testing.T) {
	r := newReceiver(t)
	n, log := newNotifier(t, fastOptions(TargetOptions{Name: "siem", Type: TypeWebhook, URL: r.URL, SigningKeyEnv: "KEY"}), Deps{})
	n.Notify(rotated)
	n.Close(t.Context())
	if reqs, _ := r.got(); len(reqs) != 0 {
		t.Errorf("%d unsigned requests sent", len(reqs))
	}
	if ev := log.all(); len(ev) != 1 || ev[0].Status != audit.StatusFailed || !strings.Contains(ev[0].Detail, "$KEY: invalid signing key") {
		t.Fatalf("audit = %+v, want one failed delivery naming the key variable", ev)
	}
}
