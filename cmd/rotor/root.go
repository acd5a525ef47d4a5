package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"os/user"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/dynamochain"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/internal/errclass"
	"github.com/rotor-dev/rotor/notify"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
)

// Exit codes. They are part of rotor's interface: scripts and CI rely on
// them (see README "Exit codes").
const (
	exitOK             = 0
	exitError          = 1
	exitUsage          = 2
	exitInProgress     = 3 // another operation holds the secret, or won the race to save it
	exitRolledBack     = 4 // reload/verify failed after promote; rolled back
	exitAuditBroken    = 5 // tampering: the audit chain is broken, or the store does not match it
	exitActionRequired = 6 // the operator must act (stage a key, delete one at the issuer)
	exitRefused        = 7 // refused by a safety rule (nothing to roll back, grace not over, key rejected)
	exitDoctor         = 8 // rotor doctor found a problem
)

// env is the process environment, injectable for tests.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string
	now            func() time.Time
	// knobs are the test-only knobs; nil in a release build (see
	// knobs.go).
	knobs *knobs
	// tty returns the operator's terminal to ask a question on, or nil
	// when rotor does not run interactively.
	tty func() io.ReadWriteCloser
	// stderrTTY is set when stderr is a terminal: long steps then show
	// their progress on one rewritten line (see progress.go).
	stderrTTY bool
	// stderrCols is the width of that terminal, 0 when unknown: a
	// rewritten line must not wrap (progress.go).
	stderrCols int
	// ticker, when set, replaces time.NewTicker for progress reports.
	ticker func(time.Duration) (<-chan time.Time, func())
}

func newEnv() *env {
	e := &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ, now: time.Now, knobs: buildKnobs(), tty: openTTY,
		stderrTTY: term.IsTerminal(int(os.Stderr.Fd()))}
	if e.stderrTTY {
		e.stderrCols, _, _ = term.GetSize(int(os.Stderr.Fd()))
	}
	return e
}

// openTTY opens the controlling terminal when stderr is one: a question is
// asked only of an operator watching rotor's messages, never of a cron job
// or a test whose output is captured.
func openTTY() io.ReadWriteCloser {
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	return f
}

// usageError marks errors in how rotor was called (exit 2).
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// globals are the flags every command shares.
type globals struct {
	env       *env
	config    string
	initiator string
	closers   []io.Closer // opened stores, closed when the command ends
	// flush writes what the command's audit recorders held back; run
	// when the command ends, before the stores close.
	flush []func(context.Context) error
	// sinks ship audit records; closed, after a last delivery attempt,
	// when the command ends.
	sinks []*audit.Shipper
	// notifier delivers the notify block's notifications; the command's
	// exit waits for them at most notifyWait (notifications.go). serving
	// is set by daemon and serve, whose deliveries retry in the background.
	notifier   *notify.Notifier
	notifyWait time.Duration
	serving    bool
	// rawStdout is stdout without neutralisation, for the one output that
	// must stay byte for byte: a value get --reveal prints.
	rawStdout io.Writer
	// rawStderr is stderr without neutralisation, for the progress line
	// rewritten on a terminal (progress.go).
	rawStderr io.Writer
}

func run(args []string, e *env) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Everything rotor prints is neutralised for terminals (termWriter),
	// except a value get --reveal prints.
	safe := *e
	safe.stdout, safe.stderr = newTermWriter(e.stdout), newTermWriter(e.stderr)
	g := &globals{env: &safe, rawStdout: e.stdout, rawStderr: e.stderr}
	e = &safe
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	cmd, err := root.ExecuteContextC(ctx)
	for _, f := range g.flush {
		// The records of an interrupted command are written all the same.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		if ferr := f(fctx); ferr != nil {
			err = errors.Join(err, fmt.Errorf("write the audit records of this command: %w", ferr))
		}
		cancel()
	}
	// After the operation's records, before the sinks ship the deliveries'.
	g.closeNotifications(ctx, err)
	for _, sh := range g.sinks {
		// A sink that is down costs the command at most shipTimeout, and
		// its records: the chain has them all the same.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shipTimeout)
		if serr := sh.Close(sctx); serr != nil {
			st := sh.State()
			fmt.Fprintf(e.stderr, "rotor: warning: audit sink %s: %d records not shipped: %v\n", st.Name, st.Dropped, serr)
		}
		cancel()
	}
	for _, c := range g.closers {
		_ = c.Close() // stops token renewal, revokes tokens rotor logged in with
	}
	if err == nil {
		return exitOK
	}
	var ce childExit
	if errors.As(err, &ce) {
		return ce.code
	}
	code := exitCode(err)
	if errors.As(err, new(doctorProblems)) {
		code = exitDoctor
	}
	if wantsJSON(cmd, args) {
		writeErrorJSON(e.stderr, err, code)
		return code
	}
	fmt.Fprintf(e.stderr, "rotor: error: %s\n", strings.ReplaceAll(err.Error(), "\n", "\n  "))
	if h := hint(err); h != "" {
		fmt.Fprintf(e.stderr, "rotor: hint: %s\n", h)
	}
	return code
}

// flushTimeout bounds writing held-back audit records at the end of a
// command.
const flushTimeout = 30 * time.Second

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "rotor",
		Short: "Rotate application credentials with zero downtime",
		Long: `rotor rotates application credentials (Clerk secret keys, signing keys, any
secret with a provider) on a schedule, keeping the previous key valid for a
grace period so that nothing breaks mid-rotation.

Every secret has slots: current (in use), previous (still valid until its
grace period ends), next (pre-staged) and pending (mid-rotation). A rotation
runs create → test → promote → reload → verify → finish, recording each step
in the store, so a crash at any point is resumed by the next run.

Exit codes: 0 ok, 1 error, 2 usage, 3 operation in progress or a lost race
to save, 4 verification
failed and rolled back, 5 tampering (audit chain broken, or a store older
than it), 6 operator action required,
7 refused by a safety rule, 8 rotor doctor found a problem.

Every command except run, serve and daemon takes -o json: one document on
stdout (package api, the same the API answers; described in README "JSON
output and the API"). A failure then ends stderr with one line
{"error":{"code":…,"message":…,"exit_code":…}}.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionLine(buildVersion()),
	}
	root.SetVersionTemplate("{{.Version}}\n")
	def := "rotor.yaml"
	if v := g.env.getenv("ROTOR_CONFIG"); v != "" {
		def = v
	}
	root.PersistentFlags().StringVar(&g.config, "config", def, "config file (env ROTOR_CONFIG)")
	root.PersistentFlags().StringVar(&g.initiator, "initiator", "", "who is acting, for the audit log (env ROTOR_INITIATOR; default: CI identity or user:<login>)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newInitCmd(g),
		newStatusCmd(g),
		newRotateCmd(g),
		newRollbackCmd(g),
		newStageCmd(g),
		newRevokeCmd(g),
		newGetCmd(g),
		newAuditCmd(g),
		newRunCmd(g),
		newPolicyCmd(g),
		newHistoryCmd(g),
		newServeCmd(g),
		newDaemonCmd(g),
		newTokenCmd(g),
		newVersionCmd(g),
		newDoctorCmd(g),
	)
	addCompletions(g, root)
	return root
}

// initiatorName returns who is acting.
func (g *globals) initiatorName() string {
	return audit.DetectInitiator(g.initiator, g.env.getenv, func() string {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
		return "unknown"
	})
}

// exitCode maps err to the exit code of its class; the API maps the same
// classes to HTTP statuses (package errclass).
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return exitUsage
	}
	switch c := errclass.Of(err); {
	case c == errclass.RolledBack:
		return exitRolledBack
	case c == errclass.InProgress, c == errclass.Conflict:
		// A lost save race means another rotor changed the secret
		// first: for the caller, the same as finding it in progress.
		return exitInProgress
	case c == errclass.AuditBroken:
		return exitAuditBroken
	case c == errclass.ActionRequired:
		return exitActionRequired
	case c.Refused():
		return exitRefused
	}
	return exitError
}

// isCobraUsage recognises cobra's own argument errors, which are not typed.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "required flag"} {
		if strings.HasPrefix(msg, p) {
			return true
		}
	}
	return false
}

func hint(err error) string {
	var ipe *rotation.InProgressError
	var are *provider.ActionRequiredError
	var use *config.UnknownSecretError
	switch {
	case errors.As(err, &use):
		return fmt.Sprintf("`rotor status` lists the configured secrets; a new one goes in the secrets: block of %s", use.Path)
	case errors.As(err, &are):
		return strings.Join(are.Steps, "\n  ")
	case errors.As(err, &ipe):
		return fmt.Sprintf("wait for it to finish, or run `rotor rotate %s --abort` to unwind it", ipe.Secret)
	case errors.Is(err, rotation.ErrRolledBack):
		return "the previous key is current again; fix the consumers and rotate again"
	case errors.Is(err, rotation.ErrNotExpired):
		return "wait until the grace period ends, or pass --force (audited)"
	case errors.Is(err, dynamochain.ErrNoTable):
		return "the audit chain's DynamoDB table must be created once, before any rotation: an administrator runs `rotor audit init` (it needs the permissions of `rotor policy aws --role admin`)"
	case errors.Is(err, audit.ErrChainBroken):
		return "the audit log or its anchor was modified, truncated or reordered; investigate before trusting it"
	case errors.Is(err, binding.ErrTampered):
		return "the store or the audit chain was put back from an older copy, or edited; rotor will not use it. Investigate, then restore the newest copy of both (`rotor audit verify` checks them)"
	}
	return ""
}
