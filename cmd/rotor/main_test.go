package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/killtest"
	"github.com/rotor-dev/rotor/internal/testknobs"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
)

// rotorBin is the name under which the test binary runs rotor's main, in
// scripts and in subprocess tests. Scripts call it through the `rotor`
// command below, which also records output for the leak check.
const rotorBin = "rotorbin"

// issuerBin runs killtest's issuer (see TestKillAnywhere): rotor's exec
// provider calls it with the path of the issuer's ledger.
const issuerBin = "rotorissuer"

func TestMain(m *testing.M) {
	testscript.Main(stopPostgresAfter{m}, map[string]func(){rotorBin: mainWithKnobs, issuerBin: issuerMain})
}

// mainWithKnobs is main with the test knobs (ROTOR_CLOCK_SKEW,
// ROTOR_FAULT), which the test binary has whatever its build tags; a
// release build of rotor does not (TestReleaseBuildHasNoKnobs).
func mainWithKnobs() {
	e := newEnv()
	e.knobs = &knobs{clock: testknobs.Clock, crash: testknobs.Crash}
	os.Exit(run(os.Args[1:], e))
}

func issuerMain() {
	if err := killtest.Serve(os.Args[1], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// TestScripts runs the end-to-end CLI scenarios in testdata/script.
//
// Script commands added here:
//
//	rotor ARGS...      run rotor; its output is kept for the leak check
//	exitcode N         assert the exit code of the last rotor command
//	chmod MODE FILE    change a file's permissions (octal)
//	perm MODE FILE     assert a file's permissions (octal)
//
// At the end of every script, every secret value that was ever in the store
// during the script is searched for in everything rotor printed (except the
// stdout of get --reveal) and in the audit log; a match fails the script.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:   "testdata/script",
		Setup: setupScript,
		Cmds: map[string]func(*testscript.TestScript, bool, []string){
			"rotor":    cmdRotor,
			"exitcode": cmdExitCode,
			"chmod":    cmdChmod,
			"perm":     cmdPerm,
		},
	})
}

type stateKey struct{}

// scriptState is what a script's commands remember between lines.
type scriptState struct {
	mu         sync.Mutex
	values     map[string]bool // every secret value seen in the store
	transcript strings.Builder // everything rotor printed, minus revealed values
	lastExit   int
	workDir    string
}

func setupScript(env *testscript.Env) error {
	st := &scriptState{values: map[string]bool{}, workDir: env.WorkDir}
	env.Values[stateKey{}] = st
	env.Setenv("ROTOR_INITIATOR", "user:tester")
	env.Defer(func() {
		if leak := st.leaks(); leak != "" {
			env.T().Fatal(leak)
		}
	})
	return nil
}

func state(ts *testscript.TestScript) *scriptState {
	return ts.Value(stateKey{}).(*scriptState)
}

func cmdRotor(ts *testscript.TestScript, neg bool, args []string) {
	st := state(ts)
	err := ts.Exec(rotorBin, args...)
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		ts.Fatalf("run rotor: %v", err)
	}
	st.mu.Lock()
	st.lastExit = code
	if !slices.Contains(args, "--reveal") {
		st.transcript.WriteString(ts.ReadFile("stdout"))
	}
	st.transcript.WriteString(ts.ReadFile("stderr"))
	st.mu.Unlock()
	st.collect(ts.Getenv("ROTOR_CONFIG"))
	if neg && code == 0 {
		ts.Fatalf("rotor %s: unexpected success", strings.Join(args, " "))
	}
	if !neg && code != 0 {
		ts.Fatalf("rotor %s: exit %d", strings.Join(args, " "), code)
	}
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 || neg {
		ts.Fatalf("usage: exitcode N")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %v", err)
	}
	if got := state(ts).lastExit; got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

func cmdChmod(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: chmod MODE FILE")
	}
	mode, err := strconv.ParseUint(args[0], 8, 32)
	if err != nil {
		ts.Fatalf("chmod: %v", err)
	}
	ts.Check(os.Chmod(ts.MkAbs(args[1]), os.FileMode(mode)))
}

func cmdPerm(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 || neg {
		ts.Fatalf("usage: perm MODE FILE")
	}
	fi, err := os.Stat(ts.MkAbs(args[1]))
	ts.Check(err)
	if got := fmt.Sprintf("%o", fi.Mode().Perm()); got != args[0] {
		ts.Fatalf("%s has mode %s, want %s", args[1], got, args[0])
	}
}

// collect adds every value now in the script's store to the set the leak
// check searches for. It reads the store the way rotor does, through the
// config; scripts with a broken config simply have nothing to collect.
func (st *scriptState) collect(cfgPath string) {
	if cfgPath == "" {
		cfgPath = filepath.Join(st.workDir, "rotor.yaml")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil || cfg.Store.Type != "file" {
		return
	}
	fs, err := file.New(cfg.Store.File.Dir, cfg.Store.File.Identity)
	if err != nil {
		return
	}
	st.collectStore(fs)
	st.mu.Lock()
	defer st.mu.Unlock()
	if b, err := os.ReadFile(cfg.Audit.Path); err == nil {
		st.transcript.Write(b)
	}
}

func (st *scriptState) collectStore(s interface {
	store.Store
	store.Lister
}) {
	ctx := context.Background()
	names, err := s.List(ctx)
	if err != nil {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, n := range names {
		sec, _, err := s.Load(ctx, n)
		if err != nil {
			continue
		}
		for _, v := range sec.Values() {
			st.values[v] = true
			// A connection URL's password must not leak on its own either.
			if p := passwordOf(v); len(p) >= 16 {
				st.values[p] = true
			}
		}
	}
}

// leaks returns a description of the first secret value found in the
// transcript, or "".
func (st *scriptState) leaks() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	text := st.transcript.String()
	for v := range st.values {
		if strings.Contains(text, v) {
			return fmt.Sprintf("secret value leaked into rotor's output or audit log (%d-character value, %d values checked)", len(v), len(st.values))
		}
	}
	return ""
}
