// Package vaulttest runs a real HashiCorp Vault dev server for integration
// tests.
//
// # Binary
//
// The server binary is looked up in $VAULT_BIN, then as vault on $PATH,
// then in the cache that internal/tools/vault/build.sh fills:
// ${ROTOR_CACHE:-$HOME/.cache/rotor}/vault-<Version>/vault. A missing binary
// is an error that says how to build it, never a skipped test: a test
// suite that silently stops testing Vault is worse than one that fails.
//
// # Use
//
// [Start] gives one test its own server. Packages with many Vault tests
// share one server from TestMain with [StartMain] and keep tests apart by
// path prefix:
//
//	var srv *vaulttest.Server
//
//	func TestMain(m *testing.M) {
//		s, stop, err := vaulttest.StartMain()
//		if err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//		srv = s
//		code := m.Run()
//		stop()
//		os.Exit(code)
//	}
package vaulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/internal/procgroup"
)

// Version is the Vault release the tests are written against. It must match
// the require line of internal/tools/vault/go.mod (a test checks this), so
// that the cache path below is the one build.sh fills.
const Version = "v1.21.0"

// Timeouts. A dev server on a loaded 2-core machine is ready in about a
// second; the deadline only bounds how long a broken start hangs.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 10 * time.Second
	startTries   = 3
)

// Server is a running Vault dev server.
type Server struct {
	// Addr is the server's URL, e.g. http://127.0.0.1:41234.
	Addr string
	// Token is the root token.
	Token string
	// Client is an API client for Addr authenticated with Token. Tests
	// should not change its token; use [Server.NewClient] for other
	// identities.
	Client *api.Client

	proc *procgroup.Proc
}

// TB is the part of testing.TB that [Start] uses. Taking it instead of
// testing.TB keeps the testing package out of programs that start a
// server with [StartMain] (rotor-bench).
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start starts a dev server for t and stops it in t.Cleanup. It fails t if
// the binary is missing or the server does not become ready.
func Start(t TB) *Server {
	t.Helper()
	s, err := start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

// StartMain starts a dev server to be shared by a package's tests, for use
// in TestMain where there is no testing.TB. The returned function stops
// the server; call it after m.Run.
func StartMain() (*Server, func(), error) {
	s, err := start()
	if err != nil {
		return nil, nil, err
	}
	return s, s.Stop, nil
}

// NewClient returns a client for the server authenticated with token
// (none if empty).
func (s *Server) NewClient(token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client for %s: %w", s.Addr, err)
	}
	c.ClearNamespace()
	c.SetToken(token)
	return c, nil
}

// Pid is the server process's id (rotor-bench reads its CPU time).
func (s *Server) Pid() int { return s.proc.Pid() }

// Log returns what the server printed so far. It contains the root token,
// which is a throwaway dev credential.
func (s *Server) Log() string { return s.proc.Log() }

// Stop ends the server's process group (SIGTERM, then SIGKILL after
// stopTimeout) and waits for it to exit. It is safe to call more than once.
func (s *Server) Stop() { s.proc.Stop(syscall.SIGTERM, stopTimeout) }

// Binary returns the path of the Vault server binary, or an error telling
// how to build it.
func Binary() (string, error) {
	if p := os.Getenv("VAULT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("VAULT_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("vault"); err == nil {
		return p, nil
	}
	cache := os.Getenv("ROTOR_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find vault binary: %w", err)
		}
		cache = filepath.Join(home, ".cache", "rotor")
	}
	p := filepath.Join(cache, "vault-"+Version, "vault")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("vault server binary not found: not in $VAULT_BIN, not on $PATH, not at %s.\n"+
			"Build it once (several minutes) with: internal/tools/vault/build.sh\n"+
			"or point VAULT_BIN at a vault %s binary", p, Version)
	}
	return p, nil
}

func start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	var errs []error
	// A free port can be taken by another process between probing and
	// Vault binding it; a server that exits early is retried on a new port.
	for range startTries {
		s, err := startOnce(bin)
		if err == nil {
			return s, nil
		}
		errs = append(errs, err)
		if !errors.Is(err, errExited) {
			break
		}
	}
	return nil, errors.Join(errs...)
}

var errExited = errors.New("vault server exited during start-up")

func startOnce(bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	token, err := randomToken()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + port
	cmd := exec.Command(bin, "server", "-dev",
		"-dev-root-token-id="+token,
		"-dev-listen-address="+addr,
		"-dev-no-store-token", // leave the user's ~/.vault-token alone
	)
	cmd.Env = serverEnv()
	proc, err := procgroup.Start(cmd)
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "http://" + addr, Token: token, proc: proc}
	if s.Client, err = s.NewClient(token); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.waitReady(); err != nil {
		s.Stop()
		return nil, fmt.Errorf("%w\nvault log:\n%s", err, s.Log())
	}
	return s, nil
}

// waitReady polls sys/health until the server is unsealed and active, the
// process exits, or readyTimeout passes.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		h, err := s.Client.Sys().HealthWithContext(ctx)
		switch {
		case err != nil:
			last = err
		case !h.Initialized || h.Sealed || h.Standby:
			last = fmt.Errorf("not ready: initialized=%t sealed=%t standby=%t", h.Initialized, h.Sealed, h.Standby)
		default:
			// The dev server mounts KV v2 at secret/ before it serves
			// HTTP, but the mount may still be finishing its set-up.
			if _, err := s.Client.Logical().ReadWithContext(ctx, "secret/config"); err != nil {
				last = err
				break
			}
			return nil
		}
		select {
		case <-s.proc.Exited():
			return fmt.Errorf("%w (%s)", errExited, s.proc.State())
		case <-ctx.Done():
			return fmt.Errorf("vault at %s not ready after %s: %v", s.Addr, readyTimeout, last)
		case <-tick.C:
		}
	}
}

// serverEnv is the test process's environment without VAULT_* variables,
// which would otherwise configure the dev server.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VAULT_") {
			env = append(env, kv)
		}
	}
	return env
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

func randomToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return "root-" + hex.EncodeToString(b), nil
}
