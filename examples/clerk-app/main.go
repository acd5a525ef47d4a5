// Command clerk-app is a small web application that calls Clerk's Backend
// API with a secret key rotor rotates, and keeps working while it does.
//
// It reads two keys, as `rotor run` provides them, with the keyring SDK's
// EnvSource (the SDK module depends on the standard library only):
//
//	CLERK_SECRET_KEY_PRIMARY    the current key
//	CLERK_SECRET_KEY_SECONDARY  the previous key, still valid during the grace period
//
// (or only CLERK_SECRET_KEY), calls Clerk with the primary key through the
// official clerk-sdk-go, and retries a
// 401 with the secondary one: between the moment a key is deleted in the
// Clerk Dashboard and the moment this process picks up the new pair, no
// request fails. CLERK_API_URL overrides the Backend API's address (without
// /v1), e.g. to point at a local fake. LISTEN sets the address to serve on
// (default :8080).
//
// Under `rotor run --mode signal --env-file F`, set CLERK_ENV_FILE=F: on
// SIGHUP the app re-reads its keys from that file (keyring.EnvFileSource)
// without restarting.
//
// Endpoints: GET /users answers {"total_count": n} from Clerk's user list;
// GET /healthz answers {"status":"ok","key_ids":{"current":…,"previous":…}}
// with the key ids rotor run passes in CLERK_SECRET_KEY_KEY_ID and
// CLERK_SECRET_KEY_SECONDARY_KEY_ID, so rotor can verify the app adopted a
// new key before it revokes the old one.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"

	"github.com/rotor-dev/rotor/keyring"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("clerk-app stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	keys, ids, err := keysFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	a := newApp(keys, os.Getenv("CLERK_API_URL"), &http.Client{Timeout: 10 * time.Second}, log)
	a.setKeys(keys, ids)
	if f := os.Getenv("CLERK_ENV_FILE"); f != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		go func() {
			for range hup {
				if err := a.reload(f); err != nil {
					log.Error("reload keys; keeping the current ones", "err", err)
				}
			}
		}()
	}
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{Addr: addr, Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("clerk-app listening", "addr", ln.Addr().String(), "keys", len(keys))
	ready(ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// ready tells a supervising test where the app listens: when READY_FILE is
// set, the address is written there once the listener is up.
func ready(addr string) {
	if f := os.Getenv("READY_FILE"); f != "" {
		_ = os.WriteFile(f, []byte(addr), 0o600)
	}
}

// envName is the secret's variable name: rotor run also sets envName with
// the suffixes _PRIMARY, _SECONDARY, _KEY_ID and _SECONDARY_KEY_ID.
const envName = "CLERK_SECRET_KEY"

// keysFromEnv returns the Clerk secret keys to try, primary first, and
// their key ids, from the variables rotor run sets.
func keysFromEnv(getenv func(string) string) (keys, ids []string, err error) {
	return keysFrom(keyring.EnvSource(envName, getenv))
}

// keysFrom loads the key set of src: the current key, then the previous one
// if there is one.
func keysFrom(src keyring.Source) (keys, ids []string, err error) {
	set, err := src.Load(context.Background())
	if err != nil {
		return nil, nil, err
	}
	keys, ids = []string{set.Current.Value}, []string{set.Current.ID}
	if p := set.Previous; p != nil {
		keys, ids = append(keys, p.Value), append(ids, p.ID)
	}
	return keys, ids, nil
}

// keySet is one generation of keys: a Clerk user client per key, primary
// first, and their key ids.
type keySet struct {
	users []*user.Client
	ids   []string
}

// app serves the endpoints. Its key set is swapped atomically on reload, so
// requests in flight finish with the set they started with.
type app struct {
	set    atomic.Pointer[keySet]
	apiURL string
	hc     *http.Client
	log    *slog.Logger
}

func newApp(keys []string, apiURL string, hc *http.Client, log *slog.Logger) *app {
	a := &app{apiURL: apiURL, hc: hc, log: log}
	a.setKeys(keys, nil)
	return a
}

func (a *app) setKeys(keys, ids []string) {
	ks := &keySet{ids: ids}
	for _, k := range keys {
		cfg := &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{Key: clerk.String(k), HTTPClient: a.hc}}
		if a.apiURL != "" {
			cfg.URL = clerk.String(strings.TrimRight(a.apiURL, "/") + "/v1")
		}
		ks.users = append(ks.users, user.NewClient(cfg))
	}
	a.set.Store(ks)
}

// reload re-reads the keys from the env file rotor run rewrites.
func (a *app) reload(path string) error {
	keys, ids, err := keysFrom(keyring.EnvFileSource(path, envName))
	if err != nil {
		return err
	}
	a.setKeys(keys, ids)
	a.log.Info("reloaded Clerk keys", "key_ids", ids)
	return nil
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", a.handleUsers)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		ks := a.set.Load()
		ids := map[string]string{"current": "", "previous": ""}
		if len(ks.ids) > 0 {
			ids["current"] = ks.ids[0]
		}
		if len(ks.ids) > 1 {
			ids["previous"] = ks.ids[1]
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "keys": len(ks.users), "key_ids": ids})
	})
	return mux
}

func (a *app) handleUsers(w http.ResponseWriter, r *http.Request) {
	n, err := a.countUsers(r.Context())
	if err != nil {
		a.log.Error("list Clerk users", "err", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": "Clerk is unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]int64{"total_count": n})
}

// countUsers asks Clerk with each key in turn, moving on only when Clerk
// rejects a key (401): any other failure would fail with every key.
func (a *app) countUsers(ctx context.Context) (int64, error) {
	var errs []error
	for i, c := range a.set.Load().users {
		list, err := c.List(ctx, &user.ListParams{ListParams: clerk.ListParams{Limit: clerk.Int64(1)}})
		if err == nil {
			if i > 0 {
				a.log.Warn("Clerk rejected the primary key; the secondary key worked", "key", i+1)
			}
			return list.TotalCount, nil
		}
		errs = append(errs, fmt.Errorf("key %d: %w", i+1, err))
		var apiErr *clerk.APIErrorResponse
		if !errors.As(err, &apiErr) || apiErr.HTTPStatusCode != http.StatusUnauthorized {
			break
		}
	}
	return 0, errors.Join(errs...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
