package zerodowntime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/keyring"
)

func (h *harness) makeTokens() error {
	var err error
	if h.ciToken, err = authz.NewToken(); err != nil {
		return err
	}
	if h.appToken, err = authz.NewToken(); err != nil {
		return err
	}
	h.ciHash, h.appHash = authz.HashToken(h.ciToken), authz.HashToken(h.appToken)
	return nil
}

// startServe starts `rotor serve` on a free loopback port.
func (h *harness) startServe(ctx context.Context) (*process, string, error) {
	ready := filepath.Join(h.o.Dir, "api.ready")
	cmd := exec.Command(h.o.RotorBin, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), h.o.Store.Env...), "ROTOR_READY_FILE="+ready)
	p, addr, err := h.startListening(ctx, cmd, "serve", ready)
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

// startPushApp is the SDK app fed by the watch stream instead of polling.
func (h *harness) startPushApp(ctx context.Context) (string, func(), error) {
	w, err := keyring.NewWatcher(h.apiURL+"/v1/watch/"+secretName, h.appToken, keyring.WithWatchAllowHTTP())
	if err != nil {
		return "", nil, err
	}
	kr, err := keyring.New(ctx, w)
	if err != nil {
		return "", nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	go w.Run(runCtx, kr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return "", nil, err
	}
	srv := &http.Server{Handler: h.keyringMux(kr), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return ln.Addr().String(), func() { srv.Close(); cancel() }, nil
}

// addWatchers connects n more watch-stream clients of the secret, as n
// more instances of the app would, until the returned function is called.
func (h *harness) addWatchers(ctx context.Context, n int) (func(), error) {
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	for range n {
		w, err := keyring.NewWatcher(h.apiURL+"/v1/watch/"+secretName, h.appToken, keyring.WithWatchAllowHTTP())
		if err != nil {
			cancel()
			return nil, err
		}
		kr, err := keyring.New(runCtx, w)
		if err != nil {
			cancel()
			return nil, err
		}
		go w.Run(runCtx, kr)
	}
	return cancel, nil
}

// rotateAPI rotates through the API as the CI caller and returns when
// rotor recorded the promote step (from its audit log, same clock).
func (h *harness) rotateAPI(ctx context.Context) (time.Time, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, h.apiURL+"/v1/secrets/"+secretName+"/rotate", nil)
	req.Header.Set("Authorization", "Bearer "+h.ciToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return time.Time{}, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return time.Time{}, fmt.Errorf("API rotate: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	out, err := h.rotor(ctx, nil, "audit", "tail", "-n", "20", "-o", "json")
	if err != nil {
		return time.Time{}, err
	}
	var promoted time.Time
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var r struct {
			Timestamp      time.Time
			Action, Status string
		}
		if json.Unmarshal([]byte(line), &r) == nil && r.Action == "rotate.promote" && r.Status == "succeeded" {
			promoted = r.Timestamp
		}
	}
	if promoted.IsZero() {
		return time.Time{}, errors.New("no promote record in the audit log")
	}
	return promoted, nil
}
