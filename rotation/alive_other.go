//go:build !unix

package rotation

import "os"

// processAlive reports whether a process with this pid exists. On Windows
// finding a process opens it, which fails when there is none.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
