//go:build !unix

package trigger

import "os/exec"

// setProcessGroup leaves the default where there are no process groups
// (Windows): cancelling kills the command only.
func setProcessGroup(*exec.Cmd) {}
