package rotation

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// TestLocalHolderAlive: a lease holder on this host is dead only when its
// process is gone; holders elsewhere, or unparsable, are presumed alive.
func TestLocalHolderAlive(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A process that has exited and been waited for: its pid is free.
	gone := exec.Command(exe, "-test.run=^$")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	parent := os.Getppid() // alive while this test runs
	tests := []struct {
		name, holder string
		want         bool
	}{
		{"this process", fmt.Sprintf("%s:%d:abcd", host, os.Getpid()), true},
		{"a live process on this host", fmt.Sprintf("%s:%d:abcd", host, parent), true},
		{"an exited process on this host", fmt.Sprintf("%s:%d:abcd", host, gone.Process.Pid), false},
		{"a process on another host", fmt.Sprintf("elsewhere-%s:%d:abcd", host, gone.Process.Pid), true},
		{"not a holder id", "ci-run-42", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LocalHolderAlive(tt.holder); got != tt.want {
				t.Errorf("LocalHolderAlive(%q) = %v, want %v", tt.holder, got, tt.want)
			}
		})
	}
}
