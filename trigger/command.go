// Package trigger makes consumers pick up a new key (reload) and checks that
// they work with it (verify). The rotation engine calls them after promote;
// a failing verify rolls the rotation back.
//
// A trigger never receives a secret value: commands get the secret's name
// and key ids in their environment and read the value from the store or
// the SDK like any other consumer.
package trigger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/internal/procgroup"
	"github.com/rotor-dev/rotor/internal/redact"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// DefaultTimeout bounds a command that sets no timeout.
const DefaultTimeout = 30 * time.Second

// Command runs a program (no shell) as a reload trigger or verification.
// Its environment is Env plus ROTOR_SECRET, ROTOR_STEP, ROTOR_KEY_ID
// (current) and ROTOR_PREVIOUS_KEY_ID.
type Command struct {
	Argv    []string
	Timeout time.Duration
	Dir     string
	// Env is the environment the command starts from, "NAME=value"
	// entries; nil means rotor's own (os.Environ). rotor passes its
	// environment without the credentials it consumed itself (package
	// internal/childenv).
	Env []string
}

var (
	_ rotation.Reloader = (*Command)(nil)
	_ rotation.Verifier = (*Command)(nil)
)

// Reload runs the command with ROTOR_STEP=reload.
func (c *Command) Reload(ctx context.Context, s *store.Secret) error {
	return c.run(ctx, "reload", s)
}

// Verify runs the command with ROTOR_STEP=verify.
func (c *Command) Verify(ctx context.Context, s *store.Secret) error {
	return c.run(ctx, "verify", s)
}

func (c *Command) run(ctx context.Context, step string, s *store.Secret) error {
	if len(c.Argv) == 0 {
		return errors.New("trigger: empty command")
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Dir = c.Dir
	base := c.Env
	if base == nil {
		base = os.Environ()
	}
	cmd.Env = append(slices.Clip(base),
		"ROTOR_SECRET="+s.Name,
		"ROTOR_STEP="+step,
		"ROTOR_KEY_ID="+store.KeyID(s.Current),
		"ROTOR_PREVIOUS_KEY_ID="+store.KeyID(s.Previous),
	)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// Own process group, so a timeout kills the command's children too.
	procgroup.Set(cmd)
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("%s command %q timed out after %s", step, c.Argv[0], timeout)
	}
	if err != nil {
		return fmt.Errorf("%s command %q: %w%s", step, c.Argv[0], err, tail(out.String(), s))
	}
	return nil
}

// tail returns the last lines of a command's output for an error message
// (and so the audit log), with every value of s redacted in case the
// command printed one, whole or in part (any 8 bytes of a value; see
// package internal/redact).
func tail(out string, s *store.Secret) string {
	out = strings.TrimSpace(out)
	if out == "" {
		return ""
	}
	out = redact.Values(out, s.Values(), "[REDACTED]")
	lines := strings.Split(out, "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	out = strings.Join(lines, "; ")
	if len(out) > 500 {
		out = out[len(out)-500:]
	}
	return ": " + out
}

// Reloaders runs several reloaders in order, stopping at the first failure.
type Reloaders []rotation.Reloader

// Reload runs every reloader.
func (rs Reloaders) Reload(ctx context.Context, s *store.Secret) error {
	for _, r := range rs {
		if err := r.Reload(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// Verifiers runs several verifiers in order, stopping at the first failure.
type Verifiers []rotation.Verifier

// Verify runs every verifier.
func (vs Verifiers) Verify(ctx context.Context, s *store.Secret) error {
	for _, v := range vs {
		if err := v.Verify(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
