package rotationtest

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/provider"
)

// flawEnv selects the flaw TestBrokenIssuerHelper injects.
const flawEnv = "ROTATIONTEST_ISSUER_FLAW"

// TestRunProviderDetectsBrokenProviders runs RunProvider, in a child
// process, against an Issuer with one flaw each and checks that the
// scenarios written for that flaw fail.
func TestRunProviderDetectsBrokenProviders(t *testing.T) {
	tests := []struct {
		flaw string
		want []string // scenarios that must fail
	}{
		{"apply-new-value", []string{"CrashAtEveryPointResumesToPending", "RotationsKeepCurrentAccepted"}},
		{"revoke-not-idempotent", []string{"RevokeIsIdempotent"}},
		{"revoke-any", []string{"RevokeAfterLateRotationSparesCurrent"}},
		{"prepare-ignores-previous", []string{"PreviousAcceptedUntilItsGraceEnds"}},
	}
	if len(tests) != len(issuerFlaws) {
		t.Fatalf("%d flaws tested, %d defined", len(tests), len(issuerFlaws))
	}
	for _, tc := range tests {
		t.Run(tc.flaw, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenIssuerHelper$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), flawEnv+"="+tc.flaw)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("scenarios against an issuer with flaw %s: err = %v, want a failing run\n%s", tc.flaw, err, out)
			}
			for _, sc := range tc.want {
				if !strings.Contains(string(out), "--- FAIL: TestBrokenIssuerHelper/"+sc+" ") {
					t.Errorf("scenario %s did not fail against an issuer with flaw %s\n%s", sc, tc.flaw, out)
				}
			}
		})
	}
}

// TestBrokenIssuerHelper is run by TestRunProviderDetectsBrokenProviders;
// on its own it does nothing.
func TestBrokenIssuerHelper(t *testing.T) {
	flaw := os.Getenv(flawEnv)
	if flaw == "" {
		return
	}
	RunProvider(t, ProviderCase{New: func(*testing.T) provider.Provider { return NewIssuer(2).withFlaw(flaw) }})
}
