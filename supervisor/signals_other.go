//go:build !unix

package supervisor

import (
	"os"
	"syscall"
)

// userSignal finds nothing where SIGUSR1 and SIGUSR2 do not exist
// (Windows): only HUP parses there.
func userSignal(string) (syscall.Signal, bool) { return 0, false }

// userSignalList is empty for the same reason.
func userSignalList() []os.Signal { return nil }
