package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
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
