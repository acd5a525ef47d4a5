package exectest_test

import (
	"fmt"
	"os/exec"
	"sync"
	"testing"

	"github.com/rotor-dev/rotor/internal/exectest"
)

// TestScriptNeverBusy writes and runs scripts from several goroutines at
// once, the pattern that made parallel tests fail with "text file busy".
// With plain os.WriteFile this loses the race a few times in a hundred runs
// on a 2-core machine; through Script it must never fail.
func TestScriptNeverBusy(t *testing.T) {
	t.Parallel()
	const goroutines, runs = 4, 50
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range runs {
				want := fmt.Sprintf("%d-%d", g, i)
				path := exectest.Script(t, "s.sh", "echo "+want+"\n")
				out, err := exec.Command(path).Output()
				if err != nil {
					t.Errorf("run %s: %v", path, err)
					return
				}
				if string(out) != want+"\n" {
					t.Errorf("run %s: output %q, want %q", path, out, want+"\n")
					return
				}
			}
		})
	}
	wg.Wait()
}
