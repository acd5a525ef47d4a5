package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/internal/testknobs"
)

// TestReleaseBuildHasNoKnobs builds rotor as a release is built (no build
// tags) and proves the test knobs are not in it: the package holding them
// is not linked, and setting a knob's variable makes rotor refuse to run
// (exit 2) instead of shifting its clock. Before, ROTOR_CLOCK_SKEW=25h
// rotor revoke demo revoked a key inside its grace period without --force.
// A build with -tags rotortest, as the tests use, has them.
func TestReleaseBuildHasNoKnobs(t *testing.T) {
	if !slices.Equal(releaseRefuses, testknobs.Names) {
		t.Fatalf("the release build refuses %q, but the knobs are %q", releaseRefuses, testknobs.Names)
	}
	deps := func(tags ...string) []string {
		args := append([]string{"list", "-deps"}, tags...)
		out, err := exec.Command("go", append(args, ".")...).Output()
		if err != nil {
			t.Fatalf("go list: %v", err)
		}
		return strings.Fields(string(out))
	}
	const pkg = "github.com/rotor-dev/rotor/internal/testknobs"
	if slices.Contains(deps(), pkg) {
		t.Fatalf("a release build links %s", pkg)
	}
	if !slices.Contains(deps("-tags", "rotortest"), pkg) {
		t.Fatalf("a -tags rotortest build does not link %s", pkg)
	}

	bin := filepath.Join(t.TempDir(), "rotor")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dir := t.TempDir()
	runBin := func(env ...string) (string, int) {
		cmd := exec.Command(bin, "status")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), env...)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := runBin(); code != 0 {
		// status without a config fails; init first.
		cmd := exec.Command(bin, "init")
		cmd.Dir = dir
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("rotor init: %v\n%s\n(status said: %s)", err, b, out)
		}
	}
	for _, knob := range []string{"ROTOR_CLOCK_SKEW=25h", "ROTOR_FAULT=crash-after:promote"} {
		out, code := runBin(knob)
		name, _, _ := strings.Cut(knob, "=")
		if code != exitUsage || !strings.Contains(out, name+" is a test knob") || strings.Contains(out, "shifts rotor's clock") {
			t.Errorf("release rotor with %s: exit %d\n%s", knob, code, out)
		}
	}
	if out, code := runBin(); code != 0 {
		t.Fatalf("release rotor status: exit %d\n%s", code, out)
	}
}
