// Package supervisor runs an application as a child process and keeps it
// on the current keys: `rotor run -- CMD` is built on it.
//
// # Modes
//
// In restart mode a new key set stops the child gracefully (SIGTERM, then
// SIGKILL after StopTimeout) and starts it again with the new environment.
// In signal mode the child keeps running: the supervisor rewrites the env
// file (0600, in the keyring SDK's format: keyring.EnvFile) and sends the
// configured signal, and the application re-reads the file. Signal mode is
// for applications that can reload without a restart; with the previous
// key still valid during the grace period, neither mode drops a request
// that falls back to the secondary key.
//
// # Processes
//
// Signals the supervisor receives (SIGINT, SIGTERM, SIGHUP, SIGUSR1,
// SIGUSR2, SIGQUIT) are forwarded to the child. When the child exits on its
// own the supervisor returns its exit code (128+signal when it was killed
// by one). Every child is waited for, so none is left a zombie.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/internal/atomicfile"
	"github.com/rotor-dev/rotor/keyring"
)

// Mode says how a new key set reaches the child.
type Mode int

const (
	// Restart stops and restarts the child with the new environment.
	Restart Mode = iota
	// Signal writes the env file and signals the child.
	Signal
)

// Config describes the child and how to update it.
type Config struct {
	Argv []string
	// Env is the base environment; key variables are added to it (and
	// replace any of the same name). rotor run passes its own environment
	// without the credentials rotor consumed (package internal/childenv).
	Env  []string
	Mode Mode
	// Signal is sent in Signal mode (default SIGHUP).
	Signal syscall.Signal
	// StopTimeout is how long a restart waits after SIGTERM before
	// SIGKILL (default 10s).
	StopTimeout time.Duration
	// EnvFile, when set, is rewritten (atomically, 0600) with the key
	// variables before every start and every signal.
	EnvFile string
	Log     *slog.Logger
}

// Supervisor runs one child at a time.
type Supervisor struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns a supervisor.
func New(cfg Config) (*Supervisor, error) {
	if len(cfg.Argv) == 0 {
		return nil, errors.New("supervisor: no command to run")
	}
	if cfg.Mode == Signal && cfg.EnvFile == "" {
		return nil, errors.New("supervisor: signal mode needs an env file for the child to re-read")
	}
	if cfg.Signal == 0 {
		cfg.Signal = syscall.SIGHUP
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Supervisor{cfg: cfg, log: log}, nil
}

var forwarded = append([]os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}, userSignalList()...)

// Run starts the child with vars (NAME=value pairs), applies every set
// received on updates, and returns the child's exit code when it exits on
// its own. Cancelling ctx stops the child gracefully and returns its code.
func (s *Supervisor) Run(ctx context.Context, vars []string, updates <-chan []string) (int, error) {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)

	child, err := s.start(vars)
	if err != nil {
		return 0, err
	}
	for {
		select {
		case <-child.done:
			return exitCode(child.state), nil
		case sig := <-sigs:
			s.log.Debug("forwarding signal", "signal", sig)
			_ = child.cmd.Process.Signal(sig)
		case v, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			vars = v
			if s.cfg.Mode == Signal {
				if err := s.writeEnvFile(vars); err != nil {
					s.log.Error("write env file", "err", err)
					continue
				}
				s.log.Info("keys changed; signalling child", "signal", s.cfg.Signal)
				_ = child.cmd.Process.Signal(s.cfg.Signal)
				continue
			}
			s.log.Info("keys changed; restarting child")
			s.stop(child)
			if child, err = s.start(vars); err != nil {
				return 0, err
			}
		case <-ctx.Done():
			s.stop(child)
			return exitCode(child.state), nil
		}
	}
}

type proc struct {
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

func (s *Supervisor) start(vars []string) (*proc, error) {
	if s.cfg.EnvFile != "" {
		if err := s.writeEnvFile(vars); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(s.cfg.Argv[0], s.cfg.Argv[1:]...)
	cmd.Env = mergeEnv(s.cfg.Env, vars)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.cfg.Argv[0], err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	s.log.Info("child started", "pid", cmd.Process.Pid)
	return p, nil
}

// stop sends SIGTERM, waits up to StopTimeout, then SIGKILLs, and always
// reaps the child.
func (s *Supervisor) stop(p *proc) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(s.cfg.StopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		s.log.Warn("child did not stop in time; killing it", "timeout", s.cfg.StopTimeout)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func exitCode(st *os.ProcessState) int {
	if st == nil {
		return 1
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}

// mergeEnv returns base with vars set, replacing any earlier definitions.
func mergeEnv(base, vars []string) []string {
	names := make([]string, 0, len(vars))
	for _, v := range vars {
		if name, _, ok := strings.Cut(v, "="); ok {
			names = append(names, name)
		}
	}
	out := make([]string, 0, len(base)+len(vars))
	for _, kv := range base {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return append(out, vars...)
}

// writeEnvFile writes vars as an env file in the keyring SDK's format
// (keyring.EnvFile), atomically and 0600.
func (s *Supervisor) writeEnvFile(vars []string) error {
	data := keyring.EnvFile("written by rotor run; re-read on "+signalName(s.cfg.Signal), vars)
	err := atomicfile.WriteFile(s.cfg.EnvFile, ".rotor-env-*", 0o600, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
	if err != nil {
		return fmt.Errorf("write env file: %w", err)
	}
	return nil
}

func signalName(sig syscall.Signal) string {
	if sig == syscall.SIGHUP {
		return "SIGHUP"
	}
	for _, name := range []string{"USR1", "USR2"} {
		if s, ok := userSignal(name); ok && s == sig {
			return "SIG" + name
		}
	}
	return sig.String()
}

// ParseSignal accepts HUP, SIGHUP, USR1, SIGUSR1, USR2, SIGUSR2 (the last
// four on Unix only: Windows has no such signals).
func ParseSignal(s string) (syscall.Signal, error) {
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if name == "HUP" {
		return syscall.SIGHUP, nil
	}
	if sig, ok := userSignal(name); ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unsupported reload signal %q (want HUP, USR1 or USR2)", s)
}
