// Command clerk-app is a small web application that calls Clerk's Backend
// API with a secret key rotor rotates, and keeps working while it does.
//
// It reads two keys, as `rotor run` provides them:
//
//	CLERK_SECRET_KEY_PRIMARY    the current key
//	CLERK_SECRET_KEY_SECONDARY  the previous key, still valid during the grace period
//
// (or only CLERK_SECRET_KEY), calls Clerk with the primary key, and retries a
// 401 with the secondary one: between the moment a key is deleted in the
// Clerk Dashboard and the moment this process picks up the new pair, no
// request fails. CLERK_API_URL overrides the Backend API's address (without
// /v1), e.g. to point at a local fake. LISTEN sets the address to serve on
// (default :8080).
//
// Endpoints: GET /users answers {"total_count": n} from Clerk's user list;
// GET /healthz answers 200 once the process is up.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/user"
)

func main() {
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("clerk-app stopped", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	keys, err := keysFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	a := newApp(keys, os.Getenv("CLERK_API_URL"), &http.Client{Timeout: 10 * time.Second}, log)
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":8080"
	}
	srv := &http.Server{Addr: addr, Handler: a.routes(), ReadHeaderTimeout: 5 * time.Second}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("clerk-app listening", "addr", addr, "keys", len(keys))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return srv.Shutdown(shutdown)
}

// keysFromEnv returns the Clerk secret keys to try, primary first.
func keysFromEnv(getenv func(string) string) ([]string, error) {
	var keys []string
	if p := strings.TrimSpace(getenv("CLERK_SECRET_KEY_PRIMARY")); p != "" {
		keys = append(keys, p)
	} else if k := strings.TrimSpace(getenv("CLERK_SECRET_KEY")); k != "" {
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no Clerk secret key: set CLERK_SECRET_KEY_PRIMARY (and _SECONDARY) or CLERK_SECRET_KEY")
	}
	if s := strings.TrimSpace(getenv("CLERK_SECRET_KEY_SECONDARY")); s != "" && s != keys[0] {
		keys = append(keys, s)
	}
	return keys, nil
}

// app serves the endpoints with one Clerk user client per key.
type app struct {
	users []*user.Client // primary first
	log   *slog.Logger
}

func newApp(keys []string, apiURL string, hc *http.Client, log *slog.Logger) *app {
	a := &app{log: log}
	for _, k := range keys {
		cfg := &clerk.ClientConfig{BackendConfig: clerk.BackendConfig{Key: clerk.String(k), HTTPClient: hc}}
		if apiURL != "" {
			cfg.URL = clerk.String(strings.TrimRight(apiURL, "/") + "/v1")
		}
		a.users = append(a.users, user.NewClient(cfg))
	}
	return a
}

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users", a.handleUsers)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "keys": len(a.users)})
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
	for i, c := range a.users {
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
