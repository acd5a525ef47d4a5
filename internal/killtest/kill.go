//go:build linux

package killtest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Target says what a kill hits.
type Target int

const (
	// Alone kills the rotor process only; its hooks and provider commands
	// run on to their end, as they would after an OOM kill of rotor.
	Alone Target = iota
	// Tree kills rotor and every process it started (hooks, provider
	// commands), whatever process group they put themselves in: rotor runs
	// in a session of its own, and every member of that session is killed.
	Tree
)

func (t Target) String() string {
	if t == Tree {
		return "tree"
	}
	return "alone"
}

var subreaper sync.Once

// Adopt makes this process the subreaper of its descendants
// (PR_SET_CHILD_SUBREAPER), so that the hooks of a rotor killed alone are
// reparented to it and [Run] can wait for them. It affects the whole
// process: orphans of other tests' children become its children too.
func Adopt() error {
	var err error
	subreaper.Do(func() {
		const prSetChildSubreaper = 36
		_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
		if errno != 0 {
			err = errno
		}
	})
	return err
}

// Result is how a process run by [Run] ended.
type Result struct {
	// Killed is set when the SIGKILL hit rotor before it exited.
	Killed bool
	// Code is rotor's exit code when it was not killed.
	Code int
	// Took is how long rotor ran.
	Took time.Duration
}

// Run starts cmd in a session of its own and, after delay, sends SIGKILL to
// it (target Alone) or to every process of its session (Tree), unless it
// has exited. It returns once rotor and every process it started have
// exited, so that nothing rotor started still changes the world when the
// caller looks at it. [Adopt] must have been called.
//
// The delay is a random moment to strike at, not a synchronisation: the
// caller checks its invariants whatever point the kill hit.
func Run(cmd *exec.Cmd, delay time.Duration, target Target) (Result, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	sid := cmd.Process.Pid
	var mu sync.Mutex
	exited, sent := false, false
	timer := time.AfterFunc(delay, func() {
		mu.Lock()
		defer mu.Unlock()
		if exited {
			return
		}
		sent = true
		if target == Tree {
			killSession(sid)
		} else {
			_ = syscall.Kill(sid, syscall.SIGKILL)
		}
	})
	err := cmd.Wait()
	took := time.Since(start)
	mu.Lock()
	exited = true
	timer.Stop()
	wasSent := sent
	mu.Unlock()
	if target == Tree && wasSent {
		// A member may have forked while the first sweep ran.
		killSession(sid)
	}
	res := Result{Took: took}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL && wasSent {
			res.Killed = true
		} else if ok && ws.Signaled() {
			return res, err
		} else {
			res.Code = ee.ExitCode()
		}
	case err != nil:
		return res, err
	}
	return res, reapSession(sid)
}

// killSession sends SIGKILL to every process of session sid until none is
// left alive (a process forking meanwhile is caught by the next sweep).
func killSession(sid int) {
	for {
		n := 0
		for _, p := range sessionMembers(sid) {
			if p.state != 'Z' {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
				n++
			}
		}
		if n == 0 {
			return
		}
		// The sweep killed some; the next one confirms no member forked
		// meanwhile (a killed process is a zombie or gone by then, or
		// still dying: killing it again is harmless).
		if !anyAlive(sid) {
			return
		}
	}
}

func anyAlive(sid int) bool {
	for _, p := range sessionMembers(sid) {
		if p.state != 'Z' && p.state != 'X' {
			return true
		}
	}
	return false
}

// reapSession waits for every remaining process of session sid. Those
// whose parent is gone are this process's children (see [Adopt]); the
// others become so when their parent exits.
func reapSession(sid int) error {
	self := os.Getpid()
	for {
		ms := sessionMembers(sid)
		if len(ms) == 0 {
			return nil
		}
		// A member whose parent is another member becomes ours when that
		// parent exits; the next scan sees it.
		for _, p := range ms {
			if p.ppid != self {
				continue
			}
			var ws syscall.WaitStatus
			for {
				_, err := syscall.Wait4(p.pid, &ws, 0, nil)
				if !errors.Is(err, syscall.EINTR) {
					break
				}
			}
		}
	}
}

type proc struct {
	pid, ppid int
	state     byte
}

// sessionMembers lists the processes of session sid from /proc.
func sessionMembers(sid int) []proc {
	d, err := os.Open("/proc")
	if err != nil {
		return nil
	}
	names, _ := d.Readdirnames(-1)
	d.Close()
	var ps []proc
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + n + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session …; comm may hold anything.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 4 {
			continue
		}
		ppid, _ := strconv.Atoi(string(f[1]))
		s, _ := strconv.Atoi(string(f[3]))
		if s == sid {
			ps = append(ps, proc{pid: pid, ppid: ppid, state: f[0][0]})
		}
	}
	return ps
}
