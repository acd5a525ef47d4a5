package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// Progress of long steps. A reload hook can wait minutes for a
// Kubernetes rollout, and verify for every consumer to adopt the new key;
// without a sign of life an operator cannot tell a slow step from a hung
// one. While such a step runs, rotor says so on stderr, never on stdout,
// so that what a command prints there (its step lines, a JSON document)
// stays what it is:
//
//   - on a terminal, one line rewritten every second with the elapsed
//     time, cleared when the step ends;
//   - otherwise (CI logs, cron mail), a plain line every
//     plainProgressEvery, nothing at all for a step that ends sooner.
//
// A run over several secrets at once (rotate --due/--all --parallel N)
// would draw one such line per secret, each overwriting the others, and
// print one plain line per secret every plainProgressEvery. It reports
// the run instead (see [progress.startRun]): on a terminal one line with
// the secrets done, failed and in flight of the total, and the step
// running longest; elsewhere, while some step has run a whole
// plainProgressEvery, one line with those counts and the steps still
// running.
const (
	ttyProgressEvery   = time.Second
	plainProgressEvery = 5 * time.Second
)

// progress reports tracked work on stderr while it runs.
type progress struct {
	// w is where lines go: the raw stderr on a terminal (the carriage
	// return and erase sequence must reach it), else the neutralised one.
	w   io.Writer
	tty bool
	// cols is the terminal's width (0: unknown); a line rewritten in
	// place must be shorter, or it wraps and \r no longer reaches its
	// start.
	cols int
	now  func() time.Time
	// ticker returns a channel that delivers the time every d, and its
	// stop function.
	ticker func(d time.Duration) (<-chan time.Time, func())

	mu sync.Mutex // one line at a time; guards run
	// run, while set, is the run over several secrets the tracked steps
	// belong to: they are reported in its one line.
	run *runTally
}

// runTally is the state of a run over several secrets.
type runTally struct {
	verb                         string // what the run does: "rotate"
	total, started, done, failed int
	// steps are the tracked steps running now, by a serial number (two
	// may have the same label).
	steps map[int]trackedStep
	next  int
	// drawn: the line is on the terminal.
	drawn bool
}

type trackedStep struct {
	label string
	start time.Time
}

// maxStepsListed bounds the steps a plain run line names.
const maxStepsListed = 3

// newProgress returns the progress reporter of g's command.
func (g *globals) newProgress() *progress {
	e := g.env
	p := &progress{w: e.stderr, tty: e.stderrTTY, cols: e.stderrCols, now: e.now, ticker: e.ticker}
	if p.tty {
		p.w = g.rawStderr
	}
	if p.ticker == nil {
		p.ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	return p
}

// track reports label as running until the returned function is called.
// A nil progress tracks nothing.
func (p *progress) track(label string) (done func()) {
	if p == nil {
		return func() {}
	}
	every := p.every()
	// The label comes from the config (hook commands, URLs): neutralise
	// it, since on a terminal it bypasses rotor's neutralising stderr.
	var b bytes.Buffer
	_, _ = newTermWriter(&b).Write([]byte(label))
	label = b.String()
	start := p.now()
	p.mu.Lock()
	if r := p.run; r != nil {
		r.next++
		id := r.next
		r.steps[id] = trackedStep{label: label, start: start}
		p.mu.Unlock()
		return func() {
			p.mu.Lock()
			defer p.mu.Unlock()
			delete(r.steps, id)
		}
	}
	p.mu.Unlock()
	drawn := false // read after stop returns
	stop := p.onTicks(every, func(t time.Time) {
		p.report(label, t.Sub(start).Round(time.Second))
		drawn = true
	})
	return func() {
		stop()
		if p.tty && drawn {
			p.mu.Lock()
			defer p.mu.Unlock()
			io.WriteString(p.w, "\r\x1b[K")
		}
	}
}

// onTicks calls f with the time of each tick of p's ticker, every d,
// until the returned function is called; that function returns after
// f's last call.
func (p *progress) onTicks(d time.Duration, f func(time.Time)) (stop func()) {
	ticks, stopTicker := p.ticker(d)
	quit, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-quit:
				return
			case t := <-ticks:
				f(t)
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		stopTicker()
	}
}

func (p *progress) every() time.Duration {
	if p.tty {
		return ttyProgressEvery
	}
	return plainProgressEvery
}

func (p *progress) report(label string, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.fit(fmt.Sprintf("%s … %s", label, elapsed)))
		return
	}
	fmt.Fprintf(p.w, "rotor: %s: still running after %s\n", label, elapsed)
}

// fit cuts a line rewritten on the terminal to its width, less one
// column: a line as wide as the terminal wraps on some.
func (p *progress) fit(line string) string {
	cols := p.cols
	if cols < 10 {
		cols = 80 // unknown, or too narrow to matter
	}
	if utf8.RuneCountInString(line) < cols {
		return line
	}
	r := []rune(line)
	return string(r[:cols-2]) + "…"
}

// startRun makes p report a run of verb over total secrets instead of
// each tracked step (see the package comment above), until the returned
// function is called; it then erases the run's line. The run reports each
// secret with runStarted and runDone. A nil progress, or a run of fewer
// than two secrets, reports as before.
func (p *progress) startRun(verb string, total int) (end func()) {
	if p == nil || total < 2 {
		return func() {}
	}
	r := &runTally{verb: verb, total: total, steps: map[int]trackedStep{}}
	p.mu.Lock()
	p.run = r
	p.mu.Unlock()
	stop := p.onTicks(p.every(), p.reportRun)
	return func() {
		stop()
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.drawn {
			io.WriteString(p.w, "\r\x1b[K")
		}
		p.run = nil
	}
}

// runStarted counts a secret of the run as in flight.
func (p *progress) runStarted() {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != nil {
		p.run.started++
	}
}

// runDone counts a secret of the run as done, or failed with err.
func (p *progress) runDone(err error) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.run == nil:
	case err != nil:
		p.run.failed++
	default:
		p.run.done++
	}
}

// reportRun reports the run at t.
func (p *progress) reportRun(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.run
	line := fmt.Sprintf("rotor: %s %d secrets: %d done, %d failed, %d in flight", r.verb, r.total, r.done, r.failed, r.started-r.done-r.failed)
	steps := make([]trackedStep, 0, len(r.steps))
	for _, id := range slices.Sorted(maps.Keys(r.steps)) {
		steps = append(steps, r.steps[id])
	}
	// The longest running first; the earlier tracked first among equals.
	slices.SortStableFunc(steps, func(a, b trackedStep) int { return a.start.Compare(b.start) })
	if p.tty {
		if len(steps) > 0 {
			line += fmt.Sprintf("; %s … %s", steps[0].label, t.Sub(steps[0].start).Round(time.Second))
		}
		fmt.Fprintf(p.w, "\r%s\x1b[K", p.fit(line))
		r.drawn = true
		return
	}
	var long []string
	for _, st := range steps {
		if elapsed := t.Sub(st.start); elapsed >= plainProgressEvery {
			long = append(long, fmt.Sprintf("%s (%s)", st.label, elapsed.Round(time.Second)))
		}
	}
	if len(long) == 0 {
		return // no step is slow: a plain log gets no line
	}
	more := ""
	if len(long) > maxStepsListed {
		long, more = long[:maxStepsListed], fmt.Sprintf(" and %d more", len(long)-maxStepsListed)
	}
	fmt.Fprintf(p.w, "%s; still running: %s%s\n", line, strings.Join(long, ", "), more)
}

// above writes a line on stdout with write, out of the way of the run's
// line: on a terminal that line is erased first (stdout is usually the
// same terminal), and the next tick draws it again below.
func (p *progress) above(write func()) {
	if p == nil {
		write()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.run; r != nil && r.drawn {
		io.WriteString(p.w, "\r\x1b[K")
		r.drawn = false
	}
	write()
}

// trackedReloader reports a reload hook as it runs.
type trackedReloader struct {
	rotation.Reloader
	p     *progress
	label string
}

func (t trackedReloader) Reload(ctx context.Context, s *store.Secret) error {
	defer t.p.track(t.label)()
	return t.Reloader.Reload(ctx, s)
}

// trackedVerifier reports a verify check as it runs.
type trackedVerifier struct {
	rotation.Verifier
	p     *progress
	label string
}

func (t trackedVerifier) Verify(ctx context.Context, s *store.Secret) error {
	defer t.p.track(t.label)()
	return t.Verifier.Verify(ctx, s)
}
