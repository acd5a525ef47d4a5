//go:build unix

package supervisor

import (
	"os"
	"syscall"
)

// userSignal returns the reload signal beyond SIGHUP named name (without
// "SIG"): USR1 or USR2.
func userSignal(name string) (syscall.Signal, bool) {
	switch name {
	case "USR1":
		return syscall.SIGUSR1, true
	case "USR2":
		return syscall.SIGUSR2, true
	}
	return 0, false
}

// userSignalList lists the user signals, to forward them to the child.
func userSignalList() []os.Signal { return []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2} }
