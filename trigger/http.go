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
// ids it uses (see keyring.HealthHandler).
type Health struct {
	KeyIDs struct {
		Current  string `json:"current"`
		Previous string `json:"previous"`
	} `json:"key_ids"`
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

// Consumers are health endpoints of the applications that use a secret
// (each a keyring.HealthHandler or anything answering its JSON). Verify
// waits until every one reports the new current key; InUse tells revoke
// which of them still use a key.
type Consumers struct {
	URLs     []string
	Timeout  time.Duration // how long Verify waits for adoption; default 2m
	Interval time.Duration // default 1s
	Client   *http.Client
}

var _ rotation.Verifier = (*Consumers)(nil)

// Verify waits until every consumer reports the current key id.
func (c *Consumers) Verify(ctx context.Context, s *store.Secret) error {
	want := store.KeyID(s.Current)
	return poll(ctx, orDefault(c.Timeout, 2*time.Minute), orDefault(c.Interval, time.Second), func(ctx context.Context) error {
		var errs []error
		for _, u := range c.URLs {
			if err := checkHealth(ctx, client(c.Client), u, want); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
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
	if err := syscall.Kill(pid, sg.Sig); err != nil {
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
