package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/server/servertest"
)

// These tests run the keyring SDK's Watcher against the real API: the
// watch stream as applications consume it. The Watcher's own behaviour
// (reconnection, ordering, bad events) is tested in the keyring module
// against scripted endpoints.

const (
	// Tokens of the API these tests start.
	appToken   = "rtr_watch_app_FerIACxACB5ucaelNVa9MCN7V_UAPMog"
	adminToken = "rtr_watch_admin_0SXWO4gmcqGdGA_DpJp6AUDSuJCLtIVQ"
)

// rotorServer runs the real API over a servertest backend with secret
// "clerk".
func rotorServer(t *testing.T) (*servertest.Backend, *httptest.Server) {
	t.Helper()
	b := servertest.NewBackend(t, "clerk")
	auth, err := authz.NewTokenAuthenticator([]authz.Token{
		{Name: "web", Hash: authz.HashToken(appToken), Role: authz.RoleApp, Secrets: []string{"clerk"}},
		{Name: "ops", Hash: authz.HashToken(adminToken), Role: authz.RoleAdmin},
	})
	if err != nil {
		t.Fatal(err)
	}
	// An hour between reads: changes arrive through notifications.
	api, err := server.New(b, auth, b.Log, server.WithWatchInterval(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(servertest.Validate(t, api))
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	return b, srv
}

// changes returns the sets k changes to, in order.
func changes(k *keyring.Keyring) <-chan keyring.Set {
	ch := make(chan keyring.Set, 16)
	k.OnChange(func(_, n keyring.Set) { ch <- n })
	return ch
}

// nextChange returns the next set from changes. It has no deadline of its
// own: a watch that never delivers fails the test by go test's -timeout,
// with every goroutine's stack, not by a guess at how slow a busy machine
// may be.
func nextChange(t *testing.T, ch <-chan keyring.Set) keyring.Set {
	t.Helper()
	return <-ch
}

func TestWatchRotorServer(t *testing.T) {
	b, srv := rotorServer(t)
	url := srv.URL + "/v1/watch/clerk"
	var mu sync.Mutex
	var errs strings.Builder // every error the watcher reported
	w, err := keyring.NewWatcher(url, appToken, keyring.WithWatchErrorHandler(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs.WriteString(err.Error() + "\n")
	}))
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.New(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	ks, _ := b.KeySet(t.Context(), "clerk")
	if k.Current().ID != ks.Set.Current.ID || k.Current().Value != ks.Set.Current.Value || k.Set().Version != ks.Set.Version {
		t.Fatalf("loaded %s at %s, store has %s at %s", k.Current(), k.Set().Version, ks.Set.Current, ks.Set.Version)
	}
	ch := changes(k)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, k) }()

	// Rotate through the API, as CI would.
	req, _ := http.NewRequestWithContext(t.Context(), "POST", srv.URL+"/v1/secrets/clerk/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := srv.Client().Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("rotate: %v %v", resp, err)
	}
	resp.Body.Close()

	// Steps before promote change the store version but not the keys;
	// wait for the set with the new current key.
	got := nextChange(t, ch)
	for got.Current.ID == ks.Set.Current.ID {
		got = nextChange(t, ch)
	}
	now, _ := b.KeySet(t.Context(), "clerk")
	if got.Current.ID != now.Set.Current.ID || k.Current().Value != now.Set.Current.Value {
		t.Fatalf("keyring has %s, store %s", k.Current(), now.Set.Current)
	}
	if got.Previous == nil || got.Previous.Value != ks.Set.Current.Value || got.Previous.ExpiresAt.IsZero() {
		t.Fatal("the old key must be the fallback, with its expiry")
	}
	if k.Err() != nil {
		t.Fatalf("Err = %v", k.Err())
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, v := range b.Values() {
		if strings.Contains(errs.String(), v) {
			t.Fatal("a key value appears in an error")
		}
	}
}

func TestKeyringWatch(t *testing.T) {
	b, srv := rotorServer(t)
	ks, _ := b.KeySet(t.Context(), "clerk")
	k, err := keyring.New(t.Context(), keyring.StaticSource(keyring.Set{Current: keyring.Key{Value: "stale-local-value", ID: "local"}}))
	if err != nil {
		t.Fatal(err)
	}
	ch := changes(k)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go k.Watch(ctx, srv.URL+"/v1/watch/clerk", appToken)
	if got := nextChange(t, ch); got.Current.ID != ks.Set.Current.ID {
		t.Fatalf("watch delivered %s, want %s", got.Current, ks.Set.Current)
	}
}
