// Package procgroup runs child processes in process groups of their own,
// so that ending one ends everything it started: a shell script's
// children, a database server's workers, a hook that forked.
//
// [Set] prepares a command that is cancelled through its context (hooks,
// exec providers, trigger commands): cancelling kills the whole group.
// [Start] runs a long-lived child (the Vault and PostgreSQL servers the
// tests start) whose output is kept, and [Proc.Stop] ends its group: a
// polite signal first, SIGKILL after a grace period.
//
// Where there are no process groups (Windows), both fall back to the
// process alone.
package procgroup

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"
)

// Proc is a child started with [Start].
type Proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been reaped
	log    syncBuffer
	stop   sync.Once
}

// Start starts cmd in a process group of its own (keeping the rest of its
// SysProcAttr), with its standard output and error captured for
// [Proc.Log], and reaps it when it exits.
func Start(cmd *exec.Cmd) (*Proc, error) {
	p := &Proc{cmd: cmd, exited: make(chan struct{})}
	setGroup(cmd)
	cmd.Stdout, cmd.Stderr = &p.log, &p.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// Exited is closed once the process has exited and been reaped.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// State describes how the process ended; call it after Exited is closed.
func (p *Proc) State() *os.ProcessState { return p.cmd.ProcessState }

// Pid is the process's id (and its group's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Log returns what the process printed so far, both streams interleaved.
func (p *Proc) Log() string { return p.log.String() }

// Stop sends sig to the process group, waits up to grace for the process
// to exit, then kills the group with SIGKILL and waits for it. It is safe
// to call more than once and after the process has exited.
func (p *Proc) Stop(sig os.Signal, grace time.Duration) {
	p.stop.Do(func() {
		_ = signalGroup(p.cmd, sig)
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.exited:
			return
		case <-t.C:
		}
		_ = signalGroup(p.cmd, os.Kill)
		<-p.exited
	})
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a
// child's two streams and reads by the caller.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(q []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(q)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
