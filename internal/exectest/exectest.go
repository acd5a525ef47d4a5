// Package exectest writes executable files that tests then run, without the
// "text file busy" race.
//
// # The race
//
// On Linux, execve fails with ETXTBSY while any process holds the file open
// for writing. A test that writes a script (open, write, close) and runs it
// can lose to another goroutine of the same test binary that forks a child in
// between: the child inherits the write descriptor and holds it until its own
// exec closes it (close-on-exec), so for a moment the script is "busy" and
// the exec fails. Parallel tests that each write and run a script hit this
// now and then on a loaded machine (Go issue 22315).
//
// # The cure
//
// [syscall.ForkLock] exists for exactly this: the runtime forks holding it
// for writing, and code that must not leak a new descriptor into a child
// holds it for reading while the descriptor is open. [WriteExecutable] writes
// the file under the read lock, so no child of this process is ever forked
// while the file is open for writing, and the command under test still
// executes the script itself — not through a shell or a retry loop that
// would hide what the code under test does.
//
// This covers children of the test binary only. Every script a rotor test
// runs is written by the test binary; checked-in scripts (testdata) and
// binaries built by `go build` are never open for writing in this process.
package exectest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// WriteExecutable writes data to path with mode 0700, holding
// [syscall.ForkLock] for reading while the file is open so that no child
// process forked by this program inherits the write descriptor.
func WriteExecutable(path string, data []byte) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	return os.WriteFile(path, data, 0o700)
}

// Script writes a /bin/sh script named name with the given body into a new
// temporary directory of t and returns its path, ready to be executed.
func Script(t testing.TB, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := WriteExecutable(path, []byte("#!/bin/sh\n"+body)); err != nil {
		t.Fatal(err)
	}
	return path
}
