//go:build !unix

package exec

import osexec "os/exec"

// setProcessGroup leaves the default: cancelling kills the process only.
func setProcessGroup(*osexec.Cmd) {}
