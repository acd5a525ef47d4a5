// Package testknobs holds rotor's test-only knobs: environment variables
// that bend rotor's clock or kill it at chosen points, so that tests can
// reach a grace period's end or a crash between two steps.
//
// They exist only in test builds. cmd/rotor wires this package in when it
// is built with the build tag rotortest (tests that build the rotor binary
// pass -tags rotortest) and from its own test binary; a release build does
// not link this package at all and refuses to run when one of the
// variables is set, so that nobody can, say, revoke a key inside its grace
// period with ROTOR_CLOCK_SKEW=25h. Every new knob belongs here.
//
// # Knobs
//
//	ROTOR_CLOCK_SKEW=25h         shifts rotor's clock forward (a warning is printed)
//	ROTOR_FAULT=crash-after:STEP  SIGKILLs rotor right after STEP (test and verify: before the save they share with promote and finish)
//
// STEP is any of [rotation.Points]: a rotation's steps (create, test,
// promote, reload, verify, finish), the points inside create (intent,
// minted, and prepare/apply for a provider that prepares), a rollback's
// steps (rollback.promote …) and those of a revoke (revoking, revoked) and
// a stage (staged); or store.saved ([binding.SavedPoint]): after any save of
// the store, before the audit record of that save.
package testknobs

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// Names of the knobs' environment variables.
const (
	ClockSkew = "ROTOR_CLOCK_SKEW"
	Fault     = "ROTOR_FAULT"
)

// Names lists every knob, for the release build to refuse.
var Names = []string{ClockSkew, Fault}

// Clock returns now shifted by ROTOR_CLOCK_SKEW (a Go duration or whole
// days, with an optional leading '+'), or now itself when the variable is
// unset. parse reads the duration; a warning goes to warn whenever the
// clock is shifted.
func Clock(getenv func(string) string, now func() time.Time, parse func(string) (time.Duration, error), warn io.Writer) (func() time.Time, error) {
	skew := getenv(ClockSkew)
	if skew == "" {
		return now, nil
	}
	d, err := parse(strings.TrimPrefix(skew, "+"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ClockSkew, err)
	}
	fmt.Fprintf(warn, "rotor: warning: %s=%s shifts rotor's clock (testing only)\n", ClockSkew, skew)
	return func() time.Time { return now().Add(d) }, nil
}

// Crash returns the engine's OnStep hook for ROTOR_FAULT=crash-after:STEP,
// which kills the process with SIGKILL right after STEP was saved, or nil
// when the variable is unset.
func Crash(getenv func(string) string) (func(string, store.Step), error) {
	v := getenv(Fault)
	if v == "" {
		return nil, nil
	}
	step, ok := strings.CutPrefix(v, "crash-after:")
	if !ok || !slices.Contains(rotation.Points, store.Step(step)) && step != binding.SavedPoint {
		names := make([]string, len(rotation.Points), len(rotation.Points)+1)
		for i, p := range rotation.Points {
			names[i] = string(p)
		}
		names = append(names, binding.SavedPoint)
		return nil, fmt.Errorf("%s=%q: want crash-after:STEP with STEP one of %s", Fault, v, strings.Join(names, ", "))
	}
	return func(_ string, s store.Step) {
		if string(s) == step {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // never returns: SIGKILL cannot be caught
		}
	}, nil
}
