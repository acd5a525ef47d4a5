package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// HTTPReload POSTs to a URL to make a consumer reload, e.g. a deploy hook.
// The body is JSON {"secret","step","key_id","previous_key_id"}; any 2xx
// answer is success.
type HTTPReload struct {
	URL     string
	Token   string // sent as Authorization: Bearer, when set
	Timeout time.Duration
	Client  *http.Client
}

var _ rotation.Reloader = (*HTTPReload)(nil)

// Reload sends the request.
func (h *HTTPReload) Reload(ctx context.Context, s *store.Secret) error {
	ctx, cancel := context.WithTimeout(ctx, orDefault(h.Timeout, DefaultTimeout))
	defer cancel()
	body, _ := json.Marshal(map[string]string{
		"secret": s.Name, "step": "reload", "key_id": store.KeyID(s.Current), "previous_key_id": store.KeyID(s.Previous),
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("reload hook: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if h.Token != "" {
		req.Header.Set("Authorization", "Bearer "+h.Token)
	}
	resp, err := client(h.Client).Do(req)
	if err != nil {
		return fmt.Errorf("reload hook %s: %w", redactURL(h.URL), err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("reload hook %s: status %d", redactURL(h.URL), resp.StatusCode)
	}
	return nil
}

// HTTPCheck verifies a consumer by polling its health URL until it answers
// 2xx (and, with RequireKeyID, reports the current key id) or Timeout
// passes.
type HTTPCheck struct {
	URL          string
	RequireKeyID bool
	Timeout      time.Duration // default 60s
	Interval     time.Duration // default 1s
	Client       *http.Client
}

var _ rotation.Verifier = (*HTTPCheck)(nil)

// Verify polls until the check passes or the deadline.
func (h *HTTPCheck) Verify(ctx context.Context, s *store.Secret) error {
	want := ""
	if h.RequireKeyID {
		want = store.KeyID(s.Current)
	}
	return poll(ctx, orDefault(h.Timeout, time.Minute), orDefault(h.Interval, time.Second), func(ctx context.Context) error {
		return checkHealth(ctx, client(h.Client), h.URL, want)
	})
}

// Health is the part of a consumer's health answer rotor reads: the key
// ids it uses and how often it refreshes them (see keyring.HealthHandler).
type Health struct {
	KeyIDs struct {
		Current  string `json:"current"`
		Previous string `json:"previous"`
	} `json:"key_ids"`
	// RefreshIntervalSeconds is the consumer's polling interval; zero
	// when it does not say (consumers older than the field) or polls
	// nothing (a keyring of @rotor-dev/keyring, pushed its sets).
	RefreshIntervalSeconds float64 `json:"refresh_interval_seconds"`
}

// RefreshInterval returns the refresh interval h reports, 0 when none.
func (h Health) RefreshInterval() time.Duration {
	switch s := h.RefreshIntervalSeconds; {
	case s <= 0:
		return 0
	case s >= maxReportedInterval.Seconds():
		return maxReportedInterval
	default:
		return time.Duration(s * float64(time.Second))
	}
}

// fetchHealth GETs a health URL and decodes its key ids.
func fetchHealth(ctx context.Context, c *http.Client, url string) (Health, error) {
	var h Health
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return h, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return h, err
	}
	if resp.StatusCode/100 != 2 {
		return h, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("health answer is not JSON with key_ids: %w", err)
	}
	return h, nil
}

func checkHealth(ctx context.Context, c *http.Client, url, wantKeyID string) error {
	if wantKeyID == "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("%s: status %d", redactURL(url), resp.StatusCode)
		}
		return nil
	}
	h, err := fetchHealth(ctx, c, url)
	if err != nil {
		return fmt.Errorf("%s: %w", redactURL(url), err)
	}
	if h.KeyIDs.Current != wantKeyID {
		return fmt.Errorf("%s uses key %q, not the new key %s", redactURL(url), h.KeyIDs.Current, wantKeyID)
	}
	return nil
}

// Consumer verification waits, by default, this long for adoption, and
// at least a reported refresh interval plus AdoptionMargin.
const (
	// DefaultConsumerTimeout is how long [Consumers.Verify] waits when
	// Timeout is not set.
	DefaultConsumerTimeout = 2 * time.Minute
	// AdoptionMargin is what [Consumers.Verify] adds to a consumer's
	// reported refresh interval: the time its refresh itself takes (a
	// store read, a retry) and the time between two of rotor's polls.
	AdoptionMargin = 10 * time.Second
	// maxReportedInterval caps how far a consumer's report can stretch
	// the wait, so that a bogus answer cannot hold the rotation's lease
	// (15 minutes by default) for longer than it lasts.
	maxReportedInterval = 10 * time.Minute
)

// Consumers are health endpoints of the applications that use a secret
// (each a keyring.HealthHandler or anything answering its JSON). Verify
// waits until every one reports the new current key; InUse tells revoke
// which of them still use a key.
//
// Verify waits up to Timeout, and longer when a consumer reports a
// refresh interval (refresh_interval_seconds, see keyring.Health) that
// Timeout cannot cover: then until that interval plus [AdoptionMargin]
// has passed since Verify started (at most 10 minutes plus the margin).
// A consumer polling every 30 seconds may adopt a key 30 seconds after
// promote, and failing it before then would roll back a rotation that
// works.
type Consumers struct {
	URLs     []string
	Timeout  time.Duration // how long Verify waits for adoption; default DefaultConsumerTimeout
	Interval time.Duration // default 1s
	Client   *http.Client

	// now and wait replace the clock in tests.
	now  func() time.Time
	wait func(ctx context.Context, d time.Duration) error
}

var _ rotation.Verifier = (*Consumers)(nil)

// Verify waits until every consumer reports the current key id.
func (c *Consumers) Verify(ctx context.Context, s *store.Secret) error {
	want := store.KeyID(s.Current)
	now, wait := c.now, c.wait
	if now == nil {
		now = time.Now
	}
	if wait == nil {
		wait = sleep
	}
	timeout := orDefault(c.Timeout, DefaultConsumerTimeout)
	interval := orDefault(c.Interval, time.Second)
	start := now()
	var reported time.Duration // longest refresh interval a consumer reported
	for {
		deadline := start.Add(max(timeout, reported+AdoptionMargin))
		var errs []error
		for _, u := range c.URLs {
			rctx, cancel := context.WithTimeout(ctx, max(deadline.Sub(now()), time.Second))
			h, err := fetchHealth(rctx, client(c.Client), u)
			cancel()
			if err == nil {
				reported = max(reported, h.RefreshInterval())
				if h.KeyIDs.Current != want {
					err = fmt.Errorf("uses key %q, not the new key %s", h.KeyIDs.Current, want)
				}
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", redactURL(u), err))
			}
		}
		if len(errs) == 0 {
			return nil
		}
		deadline = start.Add(max(timeout, reported+AdoptionMargin))
		left := deadline.Sub(now())
		if left <= 0 || ctx.Err() != nil {
			waited := deadline.Sub(start)
			how := fmt.Sprintf("after %s", waited)
			if waited > timeout {
				how += fmt.Sprintf(" (consumer_timeout %s, extended to a reported refresh interval of %s plus %s)", timeout, reported, AdoptionMargin)
			}
			if ctx.Err() != nil {
				how = "when interrupted"
			}
			return fmt.Errorf("not every consumer adopted key %s %s: %w", want, how, errors.Join(errs...))
		}
		if err := wait(ctx, min(interval, left)); err != nil {
			return fmt.Errorf("not every consumer adopted key %s when interrupted: %w", want, errors.Join(errs...))
		}
	}
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// InUse returns the consumers whose current key is keyID. A consumer that
// cannot be reached counts as using it: revoking a key nobody can vouch
// for is exactly the outage rotor exists to prevent.
func (c *Consumers) InUse(ctx context.Context, id string) ([]string, error) {
	var users []string
	for _, u := range c.URLs {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		h, err := fetchHealth(ctx, client(c.Client), u)
		cancel()
		if err != nil || h.KeyIDs.Current == id {
			users = append(users, redactURL(u))
		}
	}
	return users, nil
}

// Signal sends a signal to the process whose pid is in PIDFile.
type Signal struct {
	PIDFile string
	Sig     syscall.Signal
}

var _ rotation.Reloader = (*Signal)(nil)

// Reload reads the pid file and signals the process.
func (sg *Signal) Reload(context.Context, *store.Secret) error {
	b, err := os.ReadFile(sg.PIDFile)
	if err != nil {
		return fmt.Errorf("signal reload: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("signal reload: %s does not hold a pid", sg.PIDFile)
	}
	// os.Process rather than syscall.Kill, which Windows lacks: there only
	// a kill can be sent, and any other signal is reported as an error.
	proc, err := os.FindProcess(pid)
	if err != nil {
		return fmt.Errorf("signal reload: find pid %d: %w", pid, err)
	}
	if err := proc.Signal(sg.Sig); err != nil {
		return fmt.Errorf("signal reload: send %v to pid %d: %w", sg.Sig, pid, err)
	}
	return nil
}

// poll runs check every interval until it returns nil or timeout passes,
// and returns the last error.
func poll(ctx context.Context, timeout, interval time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil || last == nil {
			// Keep the consumer's own answer rather than the deadline
			// that cut the final attempt short.
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy after %s: %w", timeout, last)
		case <-t.C:
		}
	}
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func client(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return http.DefaultClient
}

// redactURL drops a URL's query and user info, which may carry tokens.
func redactURL(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	if at := strings.Index(u, "@"); at >= 0 {
		if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
			u = u[:scheme+3] + u[at+1:]
		}
	}
	return u
}
