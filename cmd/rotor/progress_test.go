package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// manualTicker is a progress ticker the test drives: each send on c is one
// tick. A send blocks until tracked work is running to receive it, so
// the test synchronises on the step itself, not on time.
type manualTicker struct{ c chan time.Time }

func newManualTicker() *manualTicker { return &manualTicker{c: make(chan time.Time)} }

func (m *manualTicker) ticker(time.Duration) (<-chan time.Time, func()) { return m.c, func() {} }

// tick delivers t to the tracked work, failing the test if none is
// running within a generous deadline.
func (m *manualTicker) tick(t *testing.T, at time.Time) {
	t.Helper()
	select {
	case m.c <- at:
	case <-time.After(30 * time.Second):
		t.Fatal("no tracked step was running to report progress")
	}
}

// TestProgressPlainLines: without a terminal, a reload hook that is still
// running when the progress ticker fires is reported by a plain line on
// stderr naming the secret, the step and the hook, with the elapsed time;
// stdout carries the step lines only.
func TestProgressPlainLines(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	// The hook runs until the test creates the file "release".
	cfg := strings.Replace(defaultConfig, "      encoding: base64url\n", "      encoding: base64url\n    reload:\n      - command: [sh, -c, 'while [ ! -e release ]; do sleep 0.05; done']\n", 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	tk := newManualTicker()
	start := time.Now()
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, now: time.Now, ticker: tk.ticker,
		getenv:  func(k string) string { return map[string]string{"ROTOR_INITIATOR": "user:tester"}[k] },
		environ: os.Environ, tty: nil}
	code := make(chan int, 1)
	go func() { code <- run([]string{"--config", filepath.Join(dir, "rotor.yaml"), "rotate", "demo"}, e) }()

	tk.tick(t, start.Add(12*time.Second))
	line := regexp.MustCompile(`(?m)^rotor: demo: reload: run sh -c while \[ ! -e release \]; do sleep 0\.05; done: still running after \d+s$`)
	waitFor(t, "the progress line", func() bool { return line.MatchString(stderr.String()) })
	if err := os.WriteFile(filepath.Join(dir, "release"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if c := <-code; c != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", c, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "demo: reload   ok") {
		t.Errorf("stdout lacks the reload step:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "still running") {
		t.Errorf("progress on stdout:\n%s", stdout.String())
	}
}

// TestProgressTerminalLine: on a terminal, progress is one line rewritten
// in place (carriage return, erase to the end of the line) and erased when
// the step ends; a label from the config cannot smuggle an escape sequence
// through it.
func TestProgressTerminalLine(t *testing.T) {
	var out bytes.Buffer
	tk := newManualTicker()
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	p := &progress{w: &out, tty: true, now: func() time.Time { return start }, ticker: tk.ticker}
	done := p.track("demo: reload: run kubectl\x1b[2J")
	tk.tick(t, start.Add(1*time.Second))
	tk.tick(t, start.Add(2*time.Second))
	done()
	want := "\rdemo: reload: run kubectl\\u001b[2J … 1s\x1b[K" +
		"\rdemo: reload: run kubectl\\u001b[2J … 2s\x1b[K" +
		"\r\x1b[K"
	if got := out.String(); got != want {
		t.Errorf("terminal output = %q\nwant %q", got, want)
	}
}

// TestProgressQuietForShortSteps: a step that ends before the first tick
// prints nothing, on a terminal or not.
func TestProgressQuietForShortSteps(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var out bytes.Buffer
		p := &progress{w: &out, tty: tty, now: time.Now, ticker: newManualTicker().ticker}
		p.track("demo: verify: run true")()
		if got := out.String(); got != "" {
			t.Errorf("tty %v: printed %q for a step shorter than a tick", tty, got)
		}
	}
}

// TestProgressRunLine: on a terminal, a run over several secrets is one
// line rewritten in place: the secrets done, failed and in flight of the
// total, and the step running longest; tracked steps draw no line of
// their own; a step line printed on stdout first erases it; the end of
// the run erases it; a line wider than the terminal is cut to fit. (The
// lines are drawn here as a tick draws them; TestParallelProgressOnTerminal
// runs the ticks.)
func TestProgressRunLine(t *testing.T) {
	var out bytes.Buffer
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	now := start
	p := &progress{w: &out, tty: true, cols: 200, now: func() time.Time { return now }, ticker: newManualTicker().ticker}
	end := p.startRun("rotate", 5)
	for range 3 {
		p.runStarted()
	}
	p.runDone(nil)
	p.runDone(errors.New("rolled back"))
	slow := p.track("s02: reload: run kubectl rollout")
	now = start.Add(4 * time.Second)
	quick := p.track("s03: verify: run true")
	p.reportRun(start.Add(12 * time.Second))
	quick()
	p.above(func() { out.WriteString("s03: verify   ok\n") })
	p.reportRun(start.Add(13 * time.Second))
	slow()
	p.runDone(nil)
	p.reportRun(start.Add(14 * time.Second))
	end()
	want := "\rrotor: rotate 5 secrets: 1 done, 1 failed, 1 in flight; s02: reload: run kubectl rollout … 12s\x1b[K" +
		"\r\x1b[K" + "s03: verify   ok\n" +
		"\rrotor: rotate 5 secrets: 1 done, 1 failed, 1 in flight; s02: reload: run kubectl rollout … 13s\x1b[K" +
		"\rrotor: rotate 5 secrets: 2 done, 1 failed, 0 in flight\x1b[K" +
		"\r\x1b[K"
	if got := out.String(); got != want {
		t.Errorf("terminal output = %q\nwant %q", got, want)
	}

	out.Reset()
	p = &progress{w: &out, tty: true, cols: 30, now: time.Now, ticker: newManualTicker().ticker}
	end = p.startRun("rotate", 10000)
	p.reportRun(time.Now())
	end()
	if want := "\rrotor: rotate 10000 secrets:…\x1b[K\r\x1b[K"; out.String() != want {
		t.Errorf("on a 30-column terminal: %q, want %q", out.String(), want)
	}
}

// TestProgressRunPlainLines: without a terminal, a run over several
// secrets prints one line per tick, with its counts and the steps that
// have run a whole tick (at most maxStepsListed of them), and nothing
// while no step is that slow.
func TestProgressRunPlainLines(t *testing.T) {
	var out bytes.Buffer
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	p := &progress{w: &out, now: func() time.Time { return start }, ticker: newManualTicker().ticker}
	end := p.startRun("rotate", 8)
	var dones []func()
	for i := range 5 {
		p.runStarted()
		dones = append(dones, p.track(fmt.Sprintf("s%02d: reload: run sh", i)))
	}
	p.reportRun(start.Add(3 * time.Second))
	if out.Len() != 0 {
		t.Fatalf("a line before any step ran a whole tick: %q", out.String())
	}
	p.reportRun(start.Add(10 * time.Second))
	for _, done := range dones {
		done()
	}
	p.runDone(nil)
	p.reportRun(start.Add(20 * time.Second))
	end()
	want := "rotor: rotate 8 secrets: 0 done, 0 failed, 5 in flight; still running: " +
		"s00: reload: run sh (10s), s01: reload: run sh (10s), s02: reload: run sh (10s) and 2 more\n"
	if got := out.String(); got != want {
		t.Errorf("plain output = %q\nwant %q", got, want)
	}
}

// TestParallelProgressOnTerminal: rotate --all --parallel 4 with stdout
// and stderr on one terminal, four reload hooks running at once. The
// screen, as a terminal renders the bytes, shows the step lines intact
// and, while the hooks run, one progress line for the run: no secret's
// progress line overwrites another's or has a step line appended to it,
// and none is left when rotor exits.
func TestParallelProgressOnTerminal(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	var b strings.Builder
	b.WriteString(strings.Split(defaultConfig, "secrets:\n")[0] + "secrets:\n")
	const n = 4
	for i := range n {
		fmt.Fprintf(&b, "  - name: s%02d\n    provider: random\n    reload:\n      - command: [sh, -c, 'cat \"gate-$ROTOR_SECRET.fifo\" > /dev/null']\n        timeout: 5m\n", i)
		if err := syscall.Mkfifo(filepath.Join(dir, fmt.Sprintf("gate-s%02d.fifo", i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer // stdout and stderr: one terminal
	tk := newManualTicker()
	e := &env{stdin: strings.NewReader(""), stdout: &screen, stderr: &screen, now: time.Now, ticker: tk.ticker,
		getenv:  func(k string) string { return map[string]string{"ROTOR_INITIATOR": "user:tester"}[k] },
		environ: os.Environ, stderrTTY: true, stderrCols: 300}
	code := make(chan int, 1)
	go func() {
		code <- run([]string{"--config", filepath.Join(dir, "rotor.yaml"), "rotate", "--all", "--parallel", "4"}, e)
	}()
	// Opening a gate for writing returns once its hook reads it: then all
	// four rotations are in their reload step.
	gates := make([]*os.File, n)
	for i := range gates {
		opened := make(chan *os.File, 1)
		go func() {
			f, _ := os.OpenFile(filepath.Join(dir, fmt.Sprintf("gate-s%02d.fifo", i)), os.O_WRONLY, 0)
			opened <- f
		}()
		select {
		case gates[i] = <-opened:
			if gates[i] == nil {
				t.Fatal("cannot open a gate")
			}
			defer gates[i].Close()
		case c := <-code:
			t.Fatalf("rotate ended before its reload hooks ran: exit %d\n%s", c, screen.String())
		}
	}
	tk.tick(t, time.Now().Add(time.Minute))
	runLine := regexp.MustCompile(`^rotor: rotate 4 secrets: 0 done, 0 failed, 4 in flight; s0\d: reload: run sh -c cat "gate-\$ROTOR_SECRET\.fifo" > /dev/null … [0-9hms]+$`)
	waitFor(t, "the run's progress line", func() bool {
		rows := render(screen.String())
		return runLine.MatchString(rows[len(rows)-1])
	})
	for _, g := range gates {
		g.Close()
	}
	if c := <-code; c != 0 {
		t.Fatalf("rotate --all: exit %d\n%s", c, screen.String())
	}
	step := regexp.MustCompile(`^s0\d: (create|test|promote|reload|verify|finish) +ok|^s0\d: rotated `)
	rows := render(screen.String())
	for _, row := range rows[:len(rows)-1] {
		if !step.MatchString(row) {
			t.Errorf("the screen shows a mangled line %q", row)
		}
	}
	if last := rows[len(rows)-1]; last != "" {
		t.Errorf("the screen ends with %q, want the progress line erased", last)
	}
	if got := strings.Count(strings.Join(rows, "\n"), ": finish   ok"); got != n {
		t.Errorf("%d finish lines on the screen, want %d:\n%s", got, n, strings.Join(rows, "\n"))
	}
}

// render returns the rows a terminal shows for out: a carriage return
// moves to the start of the row, ESC [ K erases to its end, a newline
// starts the next row; other characters overwrite what is under the
// cursor.
func render(out string) []string {
	rows := [][]rune{nil}
	col := 0
	for i := 0; i < len(out); {
		row := &rows[len(rows)-1]
		switch {
		case out[i] == '\r':
			col = 0
			i++
		case out[i] == '\n':
			rows = append(rows, nil)
			col = 0
			i++
		case strings.HasPrefix(out[i:], "\x1b[K"):
			*row = (*row)[:min(col, len(*row))]
			i += 3
		default:
			r, size := utf8.DecodeRuneInString(out[i:])
			for len(*row) < col {
				*row = append(*row, ' ')
			}
			if col < len(*row) {
				(*row)[col] = r
			} else {
				*row = append(*row, r)
			}
			col++
			i += size
		}
	}
	s := make([]string, len(rows))
	for i, r := range rows {
		s[i] = string(r)
	}
	return s
}
