package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// These tests run rotor as real processes (the test binary re-executed as
// rotorbin, see TestMain), because what they prove is about processes: a
// SIGKILL at a step boundary, and twenty rotors racing for one secret.

// proc runs rotor in dir and returns its output and exit code.
type procResult struct {
	stdout, stderr string
	code           int
	killed         bool
}

func rotor(t *testing.T, dir string, env []string, args ...string) procResult {
	t.Helper()
	cmd := exec.Command(rotorBin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"ROTOR_INITIATOR=user:tester"}, env...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := procResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			r.killed = true
		}
	case err != nil:
		t.Fatalf("run rotor %v: %v", args, err)
	}
	return r
}

func mustRotor(t *testing.T, dir string, args ...string) procResult {
	t.Helper()
	r := rotor(t, dir, nil, args...)
	if r.code != 0 {
		t.Fatalf("rotor %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

type statusJSON struct {
	Current *struct {
		KeyID string `json:"key_id"`
	} `json:"current"`
	Previous *struct {
		KeyID string `json:"key_id"`
	} `json:"previous"`
	Next *struct {
		KeyID string `json:"key_id"`
	} `json:"next"`
	Pending *struct {
		KeyID string `json:"key_id"`
	} `json:"pending"`
	Retired []struct {
		KeyID string `json:"key_id"`
	} `json:"retired"`
	Rotation *struct{ Step string } `json:"rotation"`
}

func status(t *testing.T, dir string) statusJSON {
	t.Helper()
	r := mustRotor(t, dir, "status", "demo", "-o", "json")
	var s statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil {
		t.Fatalf("status json: %v\n%s", err, r.stdout)
	}
	return s
}

// leakCheck fails t if any value now in dir's store, or any of extra,
// appears in outputs or in the audit log.
func leakCheck(t *testing.T, dir string, outputs []procResult, extra ...string) {
	t.Helper()
	st := &scriptState{values: map[string]bool{}, workDir: dir}
	for _, v := range extra {
		st.values[v] = true
	}
	for _, o := range outputs {
		st.transcript.WriteString(o.stdout + o.stderr)
	}
	st.collect("")
	if len(st.values) == 0 {
		t.Fatal("leak check found no values to look for")
	}
	if leak := st.leaks(); leak != "" {
		t.Fatal(leak)
	}
}

// TestCrashAtEveryStep kills rotor with SIGKILL right after each step
// (test and verify: before the save they share with the next step), then
// runs it again. The secret must end fully rotated, never with
// current empty or previous revoked early, and the audit chain must verify.
func TestCrashAtEveryStep(t *testing.T) {
	for _, step := range store.Steps {
		t.Run(string(step), func(t *testing.T) {
			dir := t.TempDir()
			var outs []procResult
			outs = append(outs, mustRotor(t, dir, "init"), mustRotor(t, dir, "rotate", "demo"))
			before := status(t, dir)

			crash := rotor(t, dir, []string{"ROTOR_FAULT=crash-after:" + string(step)}, "rotate", "demo")
			outs = append(outs, crash)
			if !crash.killed {
				t.Fatalf("rotor was not killed at %s: exit %d\n%s", step, crash.code, crash.stderr)
			}
			mid := status(t, dir)
			if mid.Current == nil {
				t.Fatal("current is empty after the crash")
			}
			if step != store.StepFinish && mid.Rotation == nil {
				t.Fatalf("crash after %s left no rotation to resume", step)
			}

			again := mustRotor(t, dir, "rotate", "demo")
			outs = append(outs, again)
			if step != store.StepFinish && !strings.Contains(again.stdout, "resumed and rotated") {
				t.Fatalf("second run did not resume:\n%s", again.stdout)
			}
			after := status(t, dir)
			if after.Rotation != nil || after.Pending != nil {
				t.Fatalf("rotation unfinished after rerun: %+v", after.Rotation)
			}
			if step != store.StepFinish {
				if after.Previous == nil || after.Previous.KeyID != before.Current.KeyID || after.Current.KeyID == before.Current.KeyID {
					t.Fatalf("after resume: current %v previous %v, want a new key over %s", after.Current, after.Previous, before.Current.KeyID)
				}
			}
			audit := mustRotor(t, dir, "audit", "tail", "-n", "0", "-o", "json")
			if strings.Contains(audit.stdout, `"action":"revoke"`) {
				t.Fatal("a key was revoked during crash recovery")
			}
			outs = append(outs, audit, mustRotor(t, dir, "audit", "verify"))
			leakCheck(t, dir, outs)
		})
	}
}

// TestCrashThenAbort kills rotor at each step before finish and then aborts:
// the secret must be back to its old current key. With a reload hook,
// promote is saved before the hook runs, so an abort after it is a
// rollback; without hooks, promote is saved only with finish, so a crash
// at any step before finish leaves a rotation that has promoted nothing
// and the abort sets the pending key aside.
func TestCrashThenAbort(t *testing.T) {
	hooked := strings.Replace(defaultConfig, "    random:\n", "    reload:\n      - command: [sh, -c, 'true']\n    random:\n", 1)
	for _, tc := range []struct {
		name, config string
		// promoted: the first step after which promote is saved.
		promoted store.Step
	}{
		{"no hooks", defaultConfig, store.StepFinish},
		{"reload hook", hooked, store.StepPromote},
	} {
		for _, step := range store.Steps[:len(store.Steps)-1] {
			t.Run(tc.name+"/"+string(step), func(t *testing.T) {
				dir := t.TempDir()
				mustRotor(t, dir, "init")
				if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
				mustRotor(t, dir, "rotate", "demo")
				before := status(t, dir)
				if r := rotor(t, dir, []string{"ROTOR_FAULT=crash-after:" + string(step)}, "rotate", "demo"); !r.killed {
					t.Fatalf("not killed: %s", r.stderr)
				}
				// A live-looking lease would block others; this one's holder is
				// dead, which status shows but rollback must still refuse.
				if r := rotor(t, dir, nil, "rollback", "demo"); r.code != exitInProgress {
					t.Fatalf("rollback during an unfinished rotation: exit %d, want %d", r.code, exitInProgress)
				}
				ab := mustRotor(t, dir, "rotate", "demo", "--abort")
				want := "aborted rotation" // before promote is saved; after it, a rollback
				if slices.Index(store.Steps, step) >= slices.Index(store.Steps, tc.promoted) {
					want = "rolled back"
				}
				if !strings.Contains(ab.stdout, want) {
					t.Fatalf("abort output: %s, want %q", ab.stdout, want)
				}
				after := status(t, dir)
				if after.Rotation != nil || after.Current.KeyID != before.Current.KeyID {
					t.Fatalf("after abort current %s rotation %v, want %s and none", after.Current.KeyID, after.Rotation, before.Current.KeyID)
				}
				mustRotor(t, dir, "audit", "verify")
			})
		}
	}
}

// TestConcurrentRotators starts twenty `rotor rotate demo` at once. The
// winner's reload hook blocks on a FIFO until the other nineteen have
// exited, so they all race against a rotation in flight: exactly one
// rotation must happen and the rest must exit with the in-progress code.
func TestConcurrentRotators(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	cfg := strings.Replace(defaultConfig, "    random:\n", "    reload:\n      - command: [sh, -c, 'cat gate.fifo > /dev/null']\n        timeout: 5m\n    random:\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "gate.fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A first rotation, released at once by a writer on the FIFO.
	opened := make(chan error, 1)
	go func() { opened <- openAndClose(filepath.Join(dir, "gate.fifo")) }()
	mustRotor(t, dir, "rotate", "demo")
	if err := <-opened; err != nil {
		t.Fatal(err)
	}
	before := status(t, dir)

	const n = 20
	results := make(chan procResult, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results <- rotor(t, dir, nil, "rotate", "demo")
		}()
	}
	var outs []procResult
	inProgress := 0
	for range n - 1 {
		r := <-results
		outs = append(outs, r)
		if r.code != exitInProgress {
			t.Fatalf("a loser exited %d, want %d (in progress)\n%s", r.code, exitInProgress, r.stderr)
		}
		inProgress++
	}
	// Nineteen gave up; release the winner.
	if err := openAndClose(filepath.Join(dir, "gate.fifo")); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	winner := <-results
	outs = append(outs, winner)
	if winner.code != 0 {
		t.Fatalf("winner exit %d\n%s", winner.code, winner.stderr)
	}
	after := status(t, dir)
	if after.Previous == nil || after.Previous.KeyID != before.Current.KeyID || len(after.Retired) != 0 {
		t.Fatalf("want exactly one rotation: previous %v (want %s), retired %v", after.Previous, before.Current.KeyID, after.Retired)
	}
	tail := mustRotor(t, dir, "audit", "tail", "-n", "0", "-o", "json")
	if got := strings.Count(tail.stdout, `"action":"rotate.finish"`); got != 2 {
		t.Fatalf("%d finished rotations in the audit log, want 2 (setup + one winner)", got)
	}
	outs = append(outs, tail, mustRotor(t, dir, "audit", "verify"))
	leakCheck(t, dir, outs)
	if inProgress != n-1 {
		t.Fatalf("in-progress exits %d, want %d", inProgress, n-1)
	}
}

// openAndClose opens a FIFO for writing (blocking until its reader is
// there) and closes it, which ends the reader's cat.
func openAndClose(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	return f.Close()
}

// TestOneShotHoldsStepRecords: a one-shot rotation on the local audit log
// writes its records in a few group commits, as on the shared chain: the
// "started" record is in the log before anything changes, the step and
// store.save records wait for the terminal record, and when the command
// ends the log holds every one of them, in step order, and verifies. A
// reload hook copies the log while the rotation is between promote and
// reload.
func TestOneShotHoldsStepRecords(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	cfg := strings.Replace(defaultConfig, "    random:\n", "    reload:\n      - command: [sh, -c, 'cp .rotor/audit.log during-reload.log']\n    random:\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRotor(t, dir, "rotate", "demo")
	before, err := os.ReadFile(filepath.Join(dir, ".rotor", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	mustRotor(t, dir, "rotate", "demo")
	actions := func(log []byte) []string {
		var as []string
		for line := range strings.Lines(string(log)) {
			var r struct {
				Action string `json:"action"`
			}
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("audit line %q: %v", line, err)
			}
			as = append(as, r.Action)
		}
		return as
	}
	during, err := os.ReadFile(filepath.Join(dir, "during-reload.log"))
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(filepath.Join(dir, ".rotor", "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(during, before) || !bytes.HasPrefix(after, during) {
		t.Fatal("the audit log was not only appended to")
	}
	// The save of the start goes first, with the started record.
	if got, want := actions(during[len(before):]), []string{"store.save", "rotate.start"}; !slices.Equal(got, want) {
		t.Errorf("records written by the time the reload hook ran: %v, want %v", got, want)
	}
	got := actions(after[len(during):])
	// Each save's record, then the records of the steps it carried.
	want := []string{"store.save", "rotate.create", "store.save", "rotate.test", "rotate.promote",
		"store.save", "rotate.reload", "rotate.verify", "rotate.finish", "store.save"}
	if !slices.Equal(got, want) {
		t.Errorf("records written after the reload hook: %v, want %v", got, want)
	}
	mustRotor(t, dir, "audit", "verify")
}
