package daemon

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/vault"
)

var srv *vaulttest.Server

func TestMain(m *testing.M) {
	s, stop, err := vaulttest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon tests need a Vault server:", err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func vaultStore(t *testing.T, prefix string) store.Store {
	t.Helper()
	tok := t.TempDir() + "/token"
	if err := os.WriteFile(tok, []byte(srv.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := vault.New(t.Context(), vault.Options{Address: srv.Addr, Mount: "secret", Prefix: prefix,
		Auth: vault.AuthOptions{Method: vault.AuthToken, TokenFile: tok}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestTwoDaemonsRotateEachDueSecretOnce runs two daemon replicas, each with
// its own Vault client, against one real Vault. Over three schedule
// periods both tick at the same moments; every due rotation must happen
// exactly once.
func TestTwoDaemonsRotateEachDueSecretOnce(t *testing.T) {
	clock := rotationtest.NewClock()
	audit := &rotationtest.Recorder{}
	prov := rotationtest.NewProvider()
	names := []string{"clerk-secret-key", "webhook-signing", "session-key"}
	secrets := func() ([]rotation.Secret, error) {
		var ss []rotation.Secret
		for _, n := range names {
			ss = append(ss, rotation.Secret{Name: n, Provider: prov, Every: 720 * time.Hour, Grace: 24 * time.Hour, Lease: 10 * time.Minute})
		}
		return ss, nil
	}
	prefix := fmt.Sprintf("daemontest-%d", time.Now().UnixNano()) // fresh per run, shared by both replicas
	replica := func(holder string) *Daemon {
		return &Daemon{Secrets: secrets, Engine: &rotation.Engine{
			Store: vaultStore(t, prefix), Audit: audit, Salt: []byte("salt"),
			Initiator: "system", Holder: holder, Now: clock.Now,
		}}
	}
	a, b := replica("replica-a"), replica("replica-b")

	finished := func(name string) int {
		n := 0
		for _, e := range audit.Events() {
			if e.Action == "rotate.finish" && e.Secret == name {
				n++
			}
		}
		return n
	}
	for period := 1; period <= 3; period++ {
		var wg sync.WaitGroup
		results := make([]TickResult, 2)
		for i, d := range []*Daemon{a, b} {
			wg.Add(1)
			go func() { defer wg.Done(); results[i] = d.Tick(t.Context()) }()
		}
		wg.Wait()
		if got := results[0].Rotated + results[1].Rotated; got != len(names) {
			t.Fatalf("period %d: %d rotations by the two replicas, want %d (%+v)", period, got, len(names), results)
		}
		for _, n := range names {
			if got := finished(n); got != period {
				t.Fatalf("period %d: %s rotated %d times in total, want %d", period, n, got, period)
			}
		}
		// A second tick in the same period finds nothing due.
		if r := a.Tick(t.Context()); r.Rotated != 0 {
			t.Fatalf("period %d: a second tick rotated %d secrets", period, r.Rotated)
		}
		clock.Advance(721 * time.Hour)
	}
}

// TestShutdownParksBetweenSteps cancels the daemon while a reload hook is
// running: the hook finishes, the rotation parks before verify with its
// lease released, and the next tick resumes and completes it.
func TestShutdownParksBetweenSteps(t *testing.T) {
	st := memstore.New()
	prov := rotationtest.NewProvider()
	inReload := make(chan struct{})
	release := make(chan struct{})
	var once sync.Once
	sec := rotation.Secret{Name: "demo", Provider: prov, Every: time.Hour, Grace: time.Minute, Lease: time.Hour,
		Reload: rotationtest.HookFunc(func(ctx context.Context, _ *store.Secret) error {
			once.Do(func() { close(inReload); <-release })
			return ctx.Err() // a cut-short step would fail here
		})}
	d := &Daemon{Engine: &rotation.Engine{Store: st, Salt: []byte("s"), Holder: "d1"},
		Secrets: func() ([]rotation.Secret, error) { return []rotation.Secret{sec}, nil }, Interval: time.Hour}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- d.Run(ctx) }()
	<-inReload
	cancel()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s, _, _ := st.Load(t.Context(), "demo")
	if s.Rotation == nil || s.Rotation.Step != store.StepReload || s.Rotation.Holder != "" {
		t.Fatalf("after shutdown: rotation %+v, want parked after reload with the lease released", s.Rotation)
	}
	next := &Daemon{Engine: &rotation.Engine{Store: st, Salt: []byte("s"), Holder: "d2"},
		Secrets: func() ([]rotation.Secret, error) { return []rotation.Secret{sec}, nil }}
	if r := next.Tick(t.Context()); r.Rotated != 1 {
		t.Fatalf("next tick = %+v, want the parked rotation resumed", r)
	}
	if s, _, _ := st.Load(t.Context(), "demo"); s.Rotation != nil || s.Current == nil {
		t.Fatalf("rotation not completed: %+v", s.Rotation)
	}
}
