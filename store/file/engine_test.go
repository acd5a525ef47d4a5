package file

import (
	"path/filepath"
	"testing"

	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// TestEngineScenarios runs the rotation engine's scenarios (full cycle,
// rollback, crash at every step, concurrent rotators) on the file store.
func TestEngineScenarios(t *testing.T) {
	rotationtest.Run(t, func(t *testing.T) store.Store {
		dir := t.TempDir()
		id := filepath.Join(dir, "identity.txt")
		if err := GenerateIdentity(id); err != nil {
			t.Fatal(err)
		}
		s, err := New(filepath.Join(dir, "store"), id)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
