//go:build !unix

package procgroup

import (
	"os"
	"os/exec"
)

// Set leaves the default where there are no process groups: cancelling
// kills the command only.
func Set(*exec.Cmd) {}

func setGroup(*exec.Cmd) {}

// signalGroup kills the process: without process groups (and, on Windows,
// without signals other than Kill) that is all there is.
func signalGroup(cmd *exec.Cmd, _ os.Signal) error { return cmd.Process.Kill() }
