//go:build unix

package procgroup_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/procgroup"
)

// script is a shell that starts a long sleep in the background, prints its
// pid and waits for it.
const script = `sleep 300 & echo "child $!"; wait`

// pidFrom waits for the script's "child PID" line in log and returns the
// pid.
func pidFrom(t *testing.T, log func() string, exited <-chan struct{}) int {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, rest, ok := strings.Cut(log(), "child "); ok {
			if line, _, ok := strings.Cut(rest, "\n"); ok {
				pid, err := strconv.Atoi(line)
				if err != nil {
					t.Fatal(err)
				}
				return pid
			}
		}
		select {
		case <-exited:
			t.Fatalf("the shell exited before starting its child: %q", log())
		case <-t.Context().Done():
			t.Fatal("no child pid before the test's deadline")
		case <-tick.C:
		}
	}
}

// waitGone waits until pid has exited: it no longer exists, or it is a
// zombie (a killed grandchild is reparented, and whoever reaps it may take
// its time). SIGKILL takes effect asynchronously; the wait is bounded.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		// pid (comm) state …; comm may hold spaces, so look after ')'.
		if i := strings.LastIndexByte(string(b), ')'); i > 0 {
			if f := strings.Fields(string(b[i+1:])); len(f) > 0 && (f[0] == "Z" || f[0] == "X") {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("process %d still runs", pid)
		case <-tick.C:
		}
	}
}

// TestStopEndsTheGroup: Stop ends the child and what it started: the
// grandchild is gone too, not left running.
func TestStopEndsTheGroup(t *testing.T) {
	p, err := procgroup.Start(exec.Command("/bin/sh", "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	pid := pidFrom(t, p.Log, p.Exited())
	p.Stop(syscall.SIGTERM, time.Minute)
	<-p.Exited()
	waitGone(t, pid)
	p.Stop(syscall.SIGTERM, time.Minute) // a second Stop is a no-op
}

// TestStopKillsAfterGrace: a child that ignores the polite signal is
// killed once the grace period is over.
func TestStopKillsAfterGrace(t *testing.T) {
	p, err := procgroup.Start(exec.Command("/bin/sh", "-c", `trap "" TERM; `+script))
	if err != nil {
		t.Fatal(err)
	}
	pid := pidFrom(t, p.Log, p.Exited())
	p.Stop(syscall.SIGTERM, 10*time.Millisecond)
	if ws, ok := p.State().Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
		t.Errorf("the child ended with %v, want SIGKILL", p.State())
	}
	waitGone(t, pid)
}

// TestSetCancelKillsTheGroup: cancelling a command prepared with Set kills
// its children too.
func TestSetCancelKillsTheGroup(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	procgroup.Set(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, err := out.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(buf[:n]), "child ")))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	_ = cmd.Wait()
	waitGone(t, pid)
}
