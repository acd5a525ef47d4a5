package exec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	osexec "os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/procgroup"
	redactpkg "github.com/rotor-dev/rotor/internal/redact"
)

// DefaultTimeout bounds a command run when its config names no timeout.
const DefaultTimeout = 30 * time.Second

// Output limits: stdout carries a credential or a small JSON document;
// stderr is kept only to explain a failure.
const (
	maxStdout    = 1 << 20
	maxStderr    = 64 << 10
	stderrInErr  = 1 << 10
	minRedactLen = 4
)

// Command is an external program run on behalf of a provider: without a
// shell, with a timeout, its stdin fed from memory. It inherits rotor's
// environment plus Env. Secrets go on stdin, never in argv or the
// environment, where other local users and crash reports can see them.
type Command struct {
	// Argv is the program and its arguments.
	Argv []string
	// Timeout bounds one run; zero means [DefaultTimeout].
	Timeout time.Duration
	// Env holds extra NAME=value pairs (never a secret value).
	Env []string
	// Redact, when set, matches secrets of a known shape to scrub from
	// stderr before it is quoted, on top of the values passed to Run.
	Redact *regexp.Regexp
}

// Name returns the program as configured, for error messages.
func (c Command) Name() string {
	if len(c.Argv) == 0 {
		return "(none)"
	}
	return c.Argv[0]
}

// Run runs c with stdin and returns what it printed on stdout. It fails
// when the program cannot start, exits non-zero, outlives the timeout (it is
// killed with its process group) or prints more than 1 MiB. Errors name the
// program and carry the start of its stderr with every value in redact
// replaced by [redacted]; stdout, which may hold a credential, is never put
// in an error.
func (c Command) Run(ctx context.Context, stdin []byte, redact ...string) ([]byte, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, errors.New("no command configured")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := osexec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.Stdin = bytes.NewReader(stdin)
	stdout := &limitedBuffer{max: maxStdout}
	stderr := &limitedBuffer{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A killed shell can leave children holding the pipes open; stop
	// waiting for them soon after.
	cmd.WaitDelay = time.Second
	procgroup.Set(cmd)

	err := cmd.Run()
	fail := func(what string) error {
		msg := fmt.Sprintf("command %s: %s", c.Name(), what)
		text := stderr.String()
		if c.Redact != nil {
			text = c.Redact.ReplaceAllString(text, "[redacted]")
		}
		if tail := redactText(text, redact, stderrInErr); tail != "" {
			msg += " (stderr: " + tail + ")"
		}
		return errors.New(msg)
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return nil, fmt.Errorf("%w: %w", fail(fmt.Sprintf("timed out after %s", timeout)), context.DeadlineExceeded)
	case ctx.Err() != nil:
		return nil, fmt.Errorf("%w: %w", fail("interrupted"), ctx.Err())
	case err != nil:
		var exitErr *osexec.ExitError
		if errors.As(err, &exitErr) {
			return nil, fail(exitErr.ProcessState.String())
		}
		// Start errors name the program, not its input.
		return nil, fmt.Errorf("command %s: %w", c.Name(), err)
	case stdout.overflow:
		return nil, fail("printed more than 1 MiB on stdout")
	}
	return stdout.Bytes(), nil
}

// redactText replaces every value in redact, and every piece of one (see
// package internal/redact), drops control characters and
// shortens s to about max bytes, for quoting program output in an error.
func redactText(s string, redact []string, max int) string {
	var vs []string
	for _, v := range redact {
		if len(v) >= minRedactLen {
			vs = append(vs, v)
		}
	}
	// Pieces of a value (8 bytes or more) too, not only whole values.
	s = redactpkg.Values(s, vs, "[redacted]")
	s = strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return ' '
		case r < 0x20 || r == 0x7f:
			return -1
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

// limitedBuffer keeps the first max bytes written and notes the rest. It
// wraps rather than embeds bytes.Buffer: an embedded ReadFrom would let
// io.Copy bypass the limit.
type limitedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); len(p) > room {
		b.overflow = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte  { return b.buf.Bytes() }
func (b *limitedBuffer) String() string { return b.buf.String() }

var _ io.Writer = (*limitedBuffer)(nil)
