//go:build !unix

package file

import "time"

// processCPU reports false: CPU time is read with getrusage(2).
func processCPU() (time.Duration, bool) { return 0, false }
