package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/rotor-dev/rotor/rotation"
)

// ActionDelivery is the action of the audit record of a delivery: status
// succeeded once a target accepted it, failed once rotor gave up.
const ActionDelivery = "notification"

// auditTimeout bounds recording one delivery, so that a command's exit is
// never held by an audit chain that does not answer.
const auditTimeout = 10 * time.Second

// Deps is what a [Notifier] needs of the process that runs it.
type Deps struct {
	// Getenv reads target URLs and signing keys named by url_env and
	// signing_key_env.
	Getenv func(string) string
	// Audit records each delivery that ended, delivered or given up (in
	// rotor, as an audit record with action [ActionDelivery]).
	Audit func(context.Context, Delivery) error
	// Warnf reports a delivery rotor gave up on, and an audit record it
	// could not write.
	Warnf func(format string, args ...any)
	// Initiator is who the process acts for, for events that name none.
	Initiator string
	// LongRunning says the process outlives its deliveries (daemon,
	// serve): each is retried for Options.RetryFor in the background.
	// Otherwise Options.ExitWait bounds them.
	LongRunning bool
	// Client sends the requests; default a client with no timeout of its
	// own (Options.Timeout bounds each request).
	Client *http.Client
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Notifier delivers notifications to the configured targets. [Notifier.Notify]
// never blocks: each delivery is retried in the background, with
// exponential backoff, until a target accepts it, Options.Attempts tries
// are spent, or its time is up (RetryFor, or ExitWait for a command that
// ends); then it is recorded in the audit log. [Notifier.Close] waits for
// deliveries in flight.
type Notifier struct {
	o        Options
	d        Deps
	targets  []*target
	retryFor time.Duration
	cls      classifier

	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

type target struct {
	TargetOptions
	url      string
	unusable error // why nothing can be delivered (URL missing)

	keyOnce sync.Once
	key     []byte // nil: deliveries are not signed
	keyErr  error
}

// signingKey returns the target's signing key, nil when it signs nothing.
// It is read (and its file created) at the first delivery, not in New: a
// command that sends nothing (rotor status, by a viewer who cannot write
// the directory) must not need it.
func (t *target) signingKey(getenv func(string) string) ([]byte, error) {
	t.keyOnce.Do(func() {
		switch {
		case t.SigningKeyFile != "":
			t.key, t.keyErr = LoadOrCreateKey(t.SigningKeyFile)
		case t.SigningKeyEnv != "":
			if t.key, t.keyErr = ParseKey(getenv(t.SigningKeyEnv)); t.keyErr != nil {
				t.keyErr = fmt.Errorf("$%s: %w", t.SigningKeyEnv, t.keyErr)
			}
		}
	})
	return t.key, t.keyErr
}

// URLEnvProblem returns why the value of the environment variable name
// is not a usable target URL, or nil. The URL is a secret: the error
// names the variable, not the value.
func URLEnvProblem(name, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("$%s is not set", name)
	case CheckURL(value) != nil:
		return fmt.Errorf("$%s is not an acceptable URL (https, or http to a loopback address, without user info or query)", name)
	}
	return nil
}

// New builds a Notifier for o (validated, with defaults applied). It reads
// the URLs the targets name; a URL variable that is unset, and a signing
// key that cannot be read (at the first delivery), fail the deliveries to
// that target, not New.
func New(o Options, d Deps) (*Notifier, error) {
	if d.Getenv == nil {
		d.Getenv = func(string) string { return "" }
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Client == nil {
		d.Client = &http.Client{}
	}
	if d.Warnf == nil {
		d.Warnf = func(string, ...any) {}
	}
	n := &Notifier{o: o, d: d, retryFor: o.ExitWait}
	if d.LongRunning {
		n.retryFor = o.RetryFor
	}
	for _, t := range o.Targets {
		tg := &target{TargetOptions: t, url: t.URL}
		if t.URLEnv != "" {
			// A command that does not notify (rotor status) must not fail
			// for want of the URL: the deliveries to this target do.
			tg.url = d.Getenv(t.URLEnv)
			tg.unusable = URLEnvProblem(t.URLEnv, tg.url)
		}
		n.targets = append(n.targets, tg)
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Notify starts delivering e to every target that wants its kind. It
// never blocks; after Close it does nothing.
func (n *Notifier) Notify(e Event) {
	if e.Initiator == "" {
		e.Initiator = n.d.Initiator
	}
	if e.Time.IsZero() {
		e.Time = n.d.Now()
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	for _, t := range n.targets {
		if t.Wants(e.Kind) {
			n.wg.Add(1)
			go n.deliver(t, e)
		}
	}
}

// Close waits until every delivery has ended or ctx is done; deliveries
// still retrying then are given up and recorded as failed.
func (n *Notifier) Close(ctx context.Context) {
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
}

// Recorder returns a rotation.Recorder that records each event with next
// and then notifies about it, on behalf of initiator: a rotation that
// finished, failed or needs the operator, a rollback, a revocation.
func (n *Notifier) Recorder(next rotation.Recorder, initiator string) rotation.Recorder {
	return &recorder{next: next, n: n, initiator: initiator}
}

type recorder struct {
	next      rotation.Recorder
	n         *Notifier
	initiator string
}

func (r *recorder) Record(ctx context.Context, e rotation.Event) error {
	if err := r.next.Record(ctx, e); err != nil {
		return err
	}
	if ev, ok := r.n.cls.classify(e, r.initiator, r.n.d.Now()); ok {
		r.n.Notify(ev)
	}
	return nil
}

// deliver tries to deliver e to t until it is accepted, the tries or the
// time are spent, or Close gives up; then records the outcome.
func (n *Notifier) deliver(t *target, e Event) {
	defer n.wg.Done()
	id := newDeliveryID()
	var body []byte
	var err error
	if t.Type == TypeSlack {
		body, err = slackMessage(e)
	} else {
		body, err = cloudEvent(id, n.o.Source, e)
	}
	tries := 0
	if err == nil && t.unusable != nil {
		err = t.unusable
	}
	var key []byte
	if err == nil {
		key, err = t.signingKey(n.d.Getenv)
	}
	if err == nil {
		ctx, cancel := context.WithTimeout(n.ctx, n.retryFor)
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval = n.o.MinBackoff, n.o.MaxBackoff
		var last error
		_, err = backoff.Retry(ctx, func() (struct{}, error) {
			tries++
			var retry error
			last, retry = n.post(ctx, t, key, id, body)
			return struct{}{}, retry
		}, backoff.WithBackOff(b), backoff.WithMaxTries(uint(n.o.Attempts)), backoff.WithMaxElapsedTime(n.retryFor))
		cancel()
		if err != nil && last != nil {
			err = last // the receiver's answer says more than "context canceled"
			if n.ctx.Err() != nil {
				err = fmt.Errorf("%w (rotor stopped retrying as it exited)", err)
			}
		}
	}
	dl := Delivery{Event: e, Target: t.Name, Type: t.Type, ID: id, Tries: tries, Err: err}
	if err != nil {
		n.d.Warnf("notification %s", dl.Detail())
	}
	if n.d.Audit == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(n.ctx), auditTimeout)
	defer cancel()
	if aerr := n.d.Audit(actx, dl); aerr != nil {
		n.d.Warnf("record notification %s to %s: %v", e.Kind, t.Name, aerr)
	}
}

// Delivery is how one delivery of an event to a target ended.
type Delivery struct {
	Event  Event
	Target string // the target's name
	Type   string // its type
	ID     string // the delivery id: the CloudEvent id, webhook-id
	Tries  int
	// Err is why rotor gave up; nil when the target accepted it.
	Err error
}

// Detail is the delivery in one line, for the audit record: the kind, the
// target, the delivery id, the tries, and why it failed.
func (d Delivery) Detail() string {
	s := fmt.Sprintf("%s to %s (%s), delivery %s: ", d.Event.Kind, d.Target, d.Type, d.ID)
	if d.Err != nil {
		return s + fmt.Sprintf("not delivered after %d tries: %v", d.Tries, d.Err)
	}
	return s + fmt.Sprintf("delivered on try %d", d.Tries)
}

// slackError matches the short error codes Slack answers with
// (invalid_payload, no_service, channel_is_archived …); any other body is
// left out of errors.
var slackError = regexp.MustCompile(`^[a-z_]{1,64}$`)

// post makes one delivery attempt. It returns the attempt's error and
// the same error as the retry loop needs it: permanent for a refusal a
// retry cannot change (4xx but 408 and 429), with the wait a 429's
// Retry-After asks for.
func (n *Notifier) post(ctx context.Context, t *target, key []byte, id string, body []byte) (err, retry error) {
	ctx, cancel := context.WithTimeout(ctx, n.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		err = errors.New("invalid target URL")
		return err, backoff.Permanent(err)
	}
	req.Header.Set("User-Agent", "rotor")
	if t.Type == TypeSlack {
		req.Header.Set("Content-Type", "application/json")
	} else {
		req.Header.Set("Content-Type", ContentTypeCloudEvents)
	}
	if key != nil {
		ts := n.d.Now().Unix()
		req.Header.Set(HeaderID, id)
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, sign(key, id, ts, body))
	}
	resp, err := n.d.Client.Do(req)
	if err != nil {
		// A *url.Error repeats the URL, which for Slack is a secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode/100 == 2 {
		return nil, nil
	}
	err = fmt.Errorf("HTTP %d", resp.StatusCode)
	if m := bytes.TrimSpace(msg); slackError.Match(m) {
		err = fmt.Errorf("HTTP %d %s", resp.StatusCode, m)
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			return err, backoff.RetryAfter(s)
		}
		return err, err
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		return err, err
	}
	return err, backoff.Permanent(err)
}

func newDeliveryID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "msg_" + hex.EncodeToString(b)
}
