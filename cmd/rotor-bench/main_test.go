package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/zerodowntime"
)

// TestDoesNotLinkTesting: rotor-bench is a program, not a test, so the
// testing package (its flags, its init) must not be linked into it, by any
// path through the packages it imports (internal/clerkfake once did).
func TestDoesNotLinkTesting(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", ".")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/rotor-dev/rotor/internal/zerodowntime") {
		t.Fatalf("go list -deps lists %d packages without internal/zerodowntime: not the dependency list of rotor-bench", len(deps))
	}
	for _, p := range deps {
		if p == "testing" || strings.HasPrefix(p, "testing/") {
			t.Errorf("rotor-bench links %s", p)
		}
	}
}

// TestPushCLIOnStores runs zero-downtime's push-cli mode briefly on each
// store -store offers besides the file store (a Vault dev server; the
// Secrets Manager and DynamoDB emulators), as rotor-bench does, so that
// the code path keeps working. rotor serve polls once an hour here, so
// each rotation's verify step (which waits for the app to report the new
// key) can only pass if the CLI's notify reached serve: nothing is timed.
// One rotation each (after the first key) keeps it short.
func TestPushCLIOnStores(t *testing.T) {
	rotorBin, err := build(t.TempDir(), "../..", "./cmd/rotor")
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{storeVault, storeAWS} {
		t.Run(kind, func(t *testing.T) {
			st, err := startStore(kind)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			s, release, err := st.forRun()
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			var log strings.Builder
			res, err := zerodowntime.Run(t.Context(), zerodowntime.Options{
				Mode: zerodowntime.ModePushCLI, RotorBin: rotorBin, Dir: t.TempDir(),
				Rotations: 1, Workers: 1, MinRequests: 20, Log: &log,
				Store: s, IdleWindow: 100 * time.Millisecond, IdleWatchers: 2, WatchInterval: time.Hour,
			})
			t.Log(log.String())
			if err != nil {
				t.Fatal(err)
			}
			if res.Rotations != 1 || res.Revoked != 1 || len(res.Adoption) != 1 {
				t.Fatalf("rotations %d, revoked %d, adoption times %d; want 1 each", res.Rotations, res.Revoked, len(res.Adoption))
			}
			if res.Failures != 0 {
				t.Fatalf("%d of %d requests failed during rotation, e.g. %v", res.Failures, res.Requests, res.FailureSamples)
			}
			if len(res.Idle) != 2 || res.Idle[0].Watchers != 1 || res.Idle[1].Watchers != 2 {
				t.Fatalf("idle counts %+v; want one with 1 watcher, one with 2", res.Idle)
			}
		})
	}
}

// TestStoreTakesPushModesOnly: on Vault or AWS only the push modes run
// (the others read the file store directly), and they are the default.
func TestStoreTakesPushModesOnly(t *testing.T) {
	c := benchConfig{store: storeVault}
	if err := c.check(); err != nil || !slices.Equal(c.modes, pushModes) {
		t.Fatalf("-store vault without -modes: modes %v, err %v; want %v", c.modes, err, pushModes)
	}
	c = benchConfig{store: storeAWS, modes: []string{zerodowntime.ModePushCLI, zerodowntime.ModeSDK}}
	if err := c.check(); err == nil || !strings.Contains(err.Error(), "sdk") {
		t.Fatalf("-store aws -modes push-cli,sdk: err %v, want a refusal naming sdk", err)
	}
	c = benchConfig{store: "s3"}
	if err := c.check(); err == nil {
		t.Fatal("-store s3 was accepted")
	}
	c = benchConfig{store: storeFile}
	if err := c.check(); err != nil || !slices.Equal(c.modes, allModes) {
		t.Fatalf("-store file without -modes: modes %v, err %v; want %v", c.modes, err, allModes)
	}
}
