package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store"
)

// notifier is the store the engine writes through when server.notify is
// configured: after every save that changes a secret's watched key set
// (current, previous and its expiry, next: a promote, rollback, stage or
// revoke, not the other steps), it sends POST /v1/secrets/{name}/notify to
// each configured rotor serve, so that their watch streams push the new set
// at once rather than at their next poll. Notifications run in the
// background and never fail an operation: a failed one is a warning, and
// the server's poll still delivers the change. Close waits for those in
// flight.
type notifier struct {
	store.Store
	urls     []string
	token    string
	tokenEnv string
	timeout  time.Duration
	client   *http.Client
	warn     func(format string, args ...any)

	mu      sync.Mutex
	sets    map[string]string // the watched set last loaded or saved, per secret
	noToken sync.Once
	wg      sync.WaitGroup
}

// newNotifier wraps st; it returns st itself when nothing is configured.
func newNotifier(st store.Store, c config.NotifyConfig, getenv func(string) string, warn func(string, ...any)) store.Store {
	if len(c.URLs) == 0 {
		return st
	}
	return &notifier{
		Store: st, urls: c.URLs, token: getenv(c.TokenEnv), tokenEnv: c.TokenEnv, timeout: time.Duration(c.Timeout),
		client: &http.Client{}, warn: warn, sets: map[string]string{},
	}
}

// watched is what a watch stream shows of s, as ids and times; nil is a
// secret without keys.
func watched(s *store.Secret) string {
	if s == nil {
		s = &store.Secret{}
	}
	var prevExp string
	if s.Previous != nil {
		prevExp = s.Previous.ExpiresAt.String()
	}
	return strings.Join([]string{store.KeyID(s.Current), store.KeyID(s.Previous), prevExp, store.KeyID(s.Next)}, "|")
}

// Load remembers the watched set, to compare the next save with.
func (n *notifier) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	s, v, err := n.Store.Load(ctx, name)
	if err == nil {
		n.mu.Lock()
		n.sets[name] = watched(s)
		n.mu.Unlock()
	}
	return s, v, err
}

// Save saves and, when the watched set changed, notifies.
func (n *notifier) Save(ctx context.Context, s *store.Secret, expected store.Version) (store.Version, error) {
	v, err := n.Store.Save(ctx, s, expected)
	if err != nil {
		return v, err
	}
	w := watched(s)
	n.mu.Lock()
	last, ok := n.sets[s.Name]
	if !ok {
		last = watched(nil) // never loaded: created by this save
	}
	changed := last != w
	n.sets[s.Name] = w
	n.mu.Unlock()
	if changed {
		n.notify(s.Name)
	}
	return v, nil
}

// notify sends the notification to every server, in the background.
func (n *notifier) notify(name string) {
	if n.token == "" {
		n.noToken.Do(func() {
			n.warn("server.notify: $%s is empty: rotor serve learns of this run's changes at its next poll only", n.tokenEnv)
		})
		return
	}
	for _, base := range n.urls {
		n.wg.Go(func() {
			if err := n.post(base, name); err != nil {
				n.warn("notify %s of %s: %v (its watchers get the change at its next poll)", redact(base), name, err)
			}
		})
	}
}

func (n *notifier) post(base, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), n.timeout)
	defer cancel()
	u := strings.TrimSuffix(base, "/") + "/v1/secrets/" + url.PathEscape(name) + "/notify"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte("{}")))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return scrub(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// Close waits for the notifications in flight (each bounded by the
// configured timeout).
func (n *notifier) Close() error {
	n.wg.Wait()
	return nil
}

// redact drops credentials, query and fragment from a URL for messages.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// scrub keeps the operation and the cause of a client error, not its URL.
func scrub(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
