package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"time"

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
	now func() time.Time
	// ticker returns a channel that delivers the time every d, and its
	// stop function.
	ticker func(d time.Duration) (<-chan time.Time, func())

	mu sync.Mutex // one line at a time
}

// newProgress returns the progress reporter of g's command.
func (g *globals) newProgress() *progress {
	e := g.env
	p := &progress{w: e.stderr, tty: e.stderrTTY, now: e.now, ticker: e.ticker}
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
	every := plainProgressEvery
	if p.tty {
		every = ttyProgressEvery
	}
	// The label comes from the config (hook commands, URLs): neutralise
	// it, since on a terminal it bypasses rotor's neutralising stderr.
	var b bytes.Buffer
	_, _ = newTermWriter(&b).Write([]byte(label))
	label = b.String()
	start := p.now()
	ticks, stop := p.ticker(every)
	quit, finished := make(chan struct{}), make(chan struct{})
	drawn := false // read after finished is closed
	go func() {
		defer close(finished)
		for {
			select {
			case <-quit:
				return
			case t := <-ticks:
				p.report(label, t.Sub(start).Round(time.Second))
				drawn = true
			}
		}
	}()
	return func() {
		close(quit)
		<-finished
		stop()
		if p.tty && drawn {
			p.mu.Lock()
			defer p.mu.Unlock()
			io.WriteString(p.w, "\r\x1b[K")
		}
	}
}

func (p *progress) report(label string, elapsed time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s … %s\x1b[K", label, elapsed)
		return
	}
	fmt.Fprintf(p.w, "rotor: %s: still running after %s\n", label, elapsed)
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
