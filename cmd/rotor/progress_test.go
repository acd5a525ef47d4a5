package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
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
