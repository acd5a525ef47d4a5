package main

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
)

// TestNotifierSendsOnWatchedChanges: over a rotation (seven saves), the
// notifier tells the server exactly when the watched set changed: the
// first key, then the promote; never for create, test, reload, verify or
// finish, which change nothing a watcher sees.
func TestNotifierSendsOnWatchedChanges(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	var warnings []string
	st := newNotifier(memstore.New(), config.NotifyConfig{URLs: []string{srv.URL + "/"}, TokenEnv: "T", Timeout: config.Duration(10 * time.Second)},
		func(string) string { return "tok" }, func(f string, _ ...any) { warnings = append(warnings, f) })
	n := st.(*notifier)
	clock := rotationtest.NewClock()
	e := &rotation.Engine{Store: st, Salt: []byte("salt"), Now: clock.Now}
	sec := rotation.Secret{Name: "demo", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	for range 2 {
		if _, err := e.Rotate(t.Context(), sec); err != nil {
			t.Fatal(err)
		}
	}
	n.Close()
	want := "POST /v1/secrets/demo/notify Bearer tok"
	if len(got) != 2 || slices.ContainsFunc(got, func(s string) bool { return s != want }) || len(warnings) != 0 {
		t.Fatalf("requests %q, warnings %q; want twice %q (first key, then the promote)", got, warnings, want)
	}
}

func TestNotifierWarnsWithoutToken(t *testing.T) {
	var warnings []string
	st := newNotifier(memstore.New(), config.NotifyConfig{URLs: []string{"https://rotor.invalid"}, TokenEnv: "ROTOR_NOTIFY_TOKEN"},
		func(string) string { return "" }, func(f string, args ...any) { warnings = append(warnings, f) })
	e := &rotation.Engine{Store: st, Salt: []byte("salt")}
	sec := rotation.Secret{Name: "demo", Provider: rotationtest.NewProvider(), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
	for range 2 {
		if _, err := e.Rotate(t.Context(), sec); err != nil {
			t.Fatal(err)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "is empty") {
		t.Fatalf("warnings %q, want one about the empty token", warnings)
	}
}
