package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond until it holds or a generous deadline passes. It waits
// for a condition, not for time: the deadline only bounds a broken run.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(b))
}

// startRun starts `rotor run` in dir and returns it with its output buffer.
func startRun(t *testing.T, dir string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	return startBackground(t, dir, []string{"ROTOR_INITIATOR=user:tester"}, append([]string{"run", "--poll", "100ms"}, args...)...)
}

// startBackground starts rotor in dir without waiting for it; the test's
// cleanup kills it if the test did not wait for it.
func startBackground(t *testing.T, dir string, env []string, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(rotorBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, &out
}

func reveal(t *testing.T, dir, slot string) string {
	t.Helper()
	return strings.TrimSpace(mustRotor(t, dir, "get", "demo", "--slot", slot, "--reveal").stdout)
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestRunRestartMode: the child gets DEMO, DEMO_PRIMARY and DEMO_SECONDARY;
// a rotation restarts it with the new set; SIGTERM to rotor is forwarded
// and rotor exits with the child's status, leaving no process behind.
func TestRunRestartMode(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	child := `echo "$$ $DEMO_PRIMARY ${DEMO_SECONDARY:-none} $([ "$DEMO" = "$DEMO_PRIMARY" ] && echo same)" >> starts.txt; trap 'exit 42' TERM; while :; do sleep 0.05; done`
	run, out := startRun(t, dir, "--", "sh", "-c", child)
	starts := filepath.Join(dir, "starts.txt")
	waitFor(t, "first start", func() bool { return len(lines(starts)) == 4 })
	first := lines(starts)
	if first[1] != reveal(t, dir, "current") || first[2] != "none" || first[3] != "same" {
		t.Fatal("child did not get current as DEMO and DEMO_PRIMARY and no secondary")
	}

	mustRotor(t, dir, "rotate", "demo")
	waitFor(t, "restart with the new keys", func() bool { return len(lines(starts)) == 8 })
	second := lines(starts)[4:]
	if second[1] != reveal(t, dir, "current") || second[2] != reveal(t, dir, "previous") {
		t.Fatal("restarted child did not get the new current as primary and the old as secondary")
	}
	if alive(atoi(t, first[0])) {
		t.Fatal("the first child is still running after the restart")
	}

	run.Process.Signal(syscall.SIGTERM)
	err := run.Wait()
	var ee *exec.ExitError
	if !errorsAs(err, &ee) || ee.ExitCode() != 42 {
		t.Fatalf("rotor run exit = %v, want the child's 42\n%s", err, out)
	}
	if alive(atoi(t, second[0])) {
		t.Fatal("child still running after rotor run exited")
	}
	leakCheck(t, dir, []procResult{{stdout: out.String()}})
}

// TestRunSignalMode: the child is not restarted; rotor rewrites the env
// file and sends SIGHUP, and the child re-reads it.
func TestRunSignalMode(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	child := `echo $$ >> starts.txt; trap '. ./keys.env; echo "$DEMO_PRIMARY $DEMO_SECONDARY" >> reloads.txt' HUP; while :; do sleep 0.05; done`
	run, out := startRun(t, dir, "--mode", "signal", "--env-file", "keys.env", "--", "sh", "-c", child)
	waitFor(t, "start", func() bool { return len(lines(filepath.Join(dir, "starts.txt"))) == 1 })
	fi, err := os.Stat(filepath.Join(dir, "keys.env"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file: %v, mode %v; want 0600", err, fi)
	}

	mustRotor(t, dir, "rotate", "demo")
	reloads := filepath.Join(dir, "reloads.txt")
	waitFor(t, "reload on SIGHUP", func() bool { return len(lines(reloads)) == 2 })
	got := lines(reloads)
	if got[0] != reveal(t, dir, "current") || got[1] != reveal(t, dir, "previous") {
		t.Fatal("child re-read the wrong keys")
	}
	if n := len(lines(filepath.Join(dir, "starts.txt"))); n != 1 {
		t.Fatalf("child started %d times in signal mode, want 1", n)
	}
	run.Process.Signal(syscall.SIGINT)
	run.Wait()
	leakCheck(t, dir, []procResult{{stdout: out.String()}})
}

func TestRunExitCode(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	// demo has no key yet: rotor refuses to start the app without one.
	if r := rotor(t, dir, nil, "run", "--", "sh", "-c", "exit 3"); r.code != 1 || !strings.Contains(r.stderr, "no current key yet") {
		t.Fatalf("run before any rotation: exit %d %s", r.code, r.stderr)
	}
	mustRotor(t, dir, "rotate", "demo")
	if r := rotor(t, dir, nil, "run", "--", "sh", "-c", "exit 7"); r.code != 7 {
		t.Fatalf("rotor run exit %d, want the child's 7", r.code)
	}
	if r := rotor(t, dir, nil, "run", "--mode", "signal", "--", "true"); r.code != exitUsage {
		t.Fatalf("signal mode without --env-file: exit %d, want %d", r.code, exitUsage)
	}
}
