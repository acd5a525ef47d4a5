package zerodowntime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/store/file"
	"github.com/rotor-dev/rotor/storesource"
)

// startSDKApp serves the same endpoints as examples/clerk-app, written the
// way the keyring package is meant to be used: the key set comes from the
// store (refreshed every Poll), outgoing calls go through the keyring's
// Transport (current key, one retry with previous on a 401), and /healthz is
// the keyring's health handler.
func (h *harness) startSDKApp(ctx context.Context) (string, func(), error) {
	st, err := file.New(filepath.Join(h.o.Dir, ".rotor", "store"), filepath.Join(h.o.Dir, ".rotor", "identity.txt"))
	if err != nil {
		return "", nil, err
	}
	kr, err := keyring.New(ctx, storesource.New(st, secretName), keyring.WithInterval(h.o.Poll))
	if err != nil {
		return "", nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopKeyring := kr.Start(runCtx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		stopKeyring()
		return "", nil, err
	}
	srv := &http.Server{Handler: h.keyringMux(kr), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	stop := func() {
		srv.Close()
		stopKeyring()
		cancel()
	}
	return ln.Addr().String(), stop, nil
}

// keyringMux serves the app's endpoints from a keyring.
func (h *harness) keyringMux(kr *keyring.Keyring) http.Handler {
	clerkClient := &http.Client{Transport: kr.Transport(nil), Timeout: 10 * time.Second}
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", kr.HealthHandler())
	mux.HandleFunc("GET /users", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, h.fake.URL()+"/v1/users?limit=1", nil)
		resp, err := clerkClient.Do(req)
		if err != nil {
			http.Error(w, "Clerk is unavailable", http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			http.Error(w, fmt.Sprintf("Clerk answered %d", resp.StatusCode), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, resp.Body)
	})
	return mux
}
