package zerodowntime

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// build compiles the main package pkg of the module in the directory
// module (relative to the repository root) into dir, with -tags rotortest
// so that rotor has its test knobs (ROTOR_CLOCK_SKEW).
func build(t *testing.T, dir, module, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", "rotortest", "-o", out, pkg)
	cmd.Dir = filepath.Join("../..", module)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// TestZeroDowntime: a consumer serves continuous requests that need the
// Clerk key while rotor performs five rotations, each verified through the
// consumer's health endpoint and followed by revocation of the previous key
// at Clerk. Not one request may fail. Run with clerk-app under
// `rotor run --mode signal`, with an app on the keyring SDK polling the
// store, and with one fed by rotor serve's watch stream (rotating through
// the API, and with the rotor CLI in another process).
func TestZeroDowntime(t *testing.T) {
	bin := t.TempDir()
	rotorBin := build(t, bin, ".", "./cmd/rotor")
	appBin := build(t, bin, "examples", "./clerk-app") // a module of its own
	for _, mode := range []string{ModeRun, ModeSDK, ModePush, ModePushCLI} {
		t.Run(mode, func(t *testing.T) { zeroDowntime(t, mode, rotorBin, appBin) })
	}
}

func zeroDowntime(t *testing.T, mode, rotorBin, appBin string) {
	var log strings.Builder
	res, err := Run(t.Context(), Options{
		Mode:        mode,
		RotorBin:    rotorBin,
		AppBin:      appBin,
		Dir:         t.TempDir(),
		Rotations:   5,
		Workers:     4,
		MinRequests: 500,
		Log:         &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotations != 5 || res.Revoked != 5 {
		t.Fatalf("rotations %d, revoked %d; want 5 each", res.Rotations, res.Revoked)
	}
	if res.Requests < 500 {
		t.Fatalf("only %d requests were made", res.Requests)
	}
	if res.Failures != 0 {
		t.Fatalf("%d of %d requests failed during rotation, e.g. %v", res.Failures, res.Requests, res.FailureSamples)
	}
}

// TestZeroDowntimePostgres: a pgx pool (keyring/pgxkeyring) runs queries
// against a real PostgreSQL while rotor rotates the password five times
// (alternating users), each verified through the app's health endpoint and
// followed by revoking the previous role. Not one query may fail.
func TestZeroDowntimePostgres(t *testing.T) {
	rotorBin := build(t, t.TempDir(), ".", "./cmd/rotor")
	var log strings.Builder
	res, err := RunPostgres(t.Context(), Options{
		Mode: ModePostgres, RotorBin: rotorBin, Dir: t.TempDir(),
		Rotations: 5, Workers: 4, MinRequests: 500, Log: &log,
	})
	t.Log(log.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.Rotations != 5 || res.Revoked != 5 {
		t.Fatalf("rotations %d, revoked %d; want 5 each", res.Rotations, res.Revoked)
	}
	if res.Requests < 500 {
		t.Fatalf("only %d queries were made", res.Requests)
	}
	if res.Failures != 0 {
		t.Fatalf("%d of %d queries failed during rotation, e.g. %v", res.Failures, res.Requests, res.FailureSamples)
	}
}
