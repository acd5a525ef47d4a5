package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

func newRotateCmd(g *globals) *cobra.Command {
	var due, all, dryRun, abort bool
	var parallel int
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "rotate (NAME | --due | --all) [--parallel N]",
		Short: "Rotate a secret: create, test, promote, reload, verify, finish",
		Long: `Rotate runs the rotation state machine for one secret (NAME), for every
secret that is due (--due), or for all of them (--all), printing each step as
it completes. A staged next key is promoted if there is one; otherwise the
provider mints a new key. An unfinished rotation left by a crash is resumed.

--due is idempotent: a stateless cron may call it as often as it likes, and
it rotates only what is due. --abort unwinds an unfinished rotation instead:
before promote the pending key is discarded, after promote it is rolled back.

--due and --all rotate up to --parallel secrets at once, each under its own
lease, so a second rotor (another cron run, a daemon) still never rotates
the same secret twice. The default suits the store: ` + parallelDefaults + `.
Steps of different secrets interleave in the output; each line starts with
its secret's name. While a reload hook or verify check runs, stderr shows
that it is still running (a line rewritten in place on a terminal, a line
every 5 s otherwise); rotating several secrets at once, that line reports
the run: the secrets done, failed and in flight of the total, and the
steps still running.

--dry-run says what the rotation would do (a staged key or the provider
call that mints one, the reload hooks, verify checks and consumers, an
interrupted operation it would resume or finish first) or why it would
stop (another rotor's live lease: busy, exit 3), without changing anything
or calling the issuer.

With -o json the steps are not shown: one document (api.RotateRun) says,
per secret, what happened (rotated, aborted, not_due, dry_run with the
plan's text and its steps, or failed, with the error).`,
		Example: `  rotor rotate demo
  rotor rotate --due
  rotor rotate --due --parallel 32
  rotor rotate demo --dry-run
  rotor rotate demo --abort
  rotor rotate --due -o json | jq -r '.secrets[] | select(.outcome == "rotated") | .secret'`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := len(args)
			if due {
				n++
			}
			if all {
				n++
			}
			if n != 1 {
				return usagef("rotate: give exactly one of NAME, --due or --all")
			}
			if abort && len(args) != 1 {
				return usagef("rotate: --abort needs a NAME")
			}
			if parallel < 0 {
				return usagef("rotate: --parallel must be at least 1")
			}
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			a.progress = g.newProgress()
			if parallel == 0 {
				parallel = defaultParallel(a.cfg.Store.Type)
			}
			// In JSON mode the lines go nowhere: the document says it all.
			var lines io.Writer = io.Discard
			if !out.json() {
				lines = &lineWriter{w: cmd.OutOrStdout(), p: a.progress}
			}
			onStep := a.engine.OnStep // ROTOR_FAULT, if set
			a.engine.OnStep = func(name string, step store.Step, s *store.Secret) {
				printStep(lines, name, step, s)
				if onStep != nil {
					onStep(name, step, s)
				}
			}
			names := args
			if due || all {
				names = a.names()
			}
			var run api.RotateRun
			if abort {
				item, err := a.abort(cmd.Context(), lines, names[0])
				if err != nil {
					return err
				}
				run.Secrets = []api.RotateItem{item}
			} else {
				run, err = a.rotateAll(cmd.Context(), lines, names, due, dryRun, parallel)
			}
			// The document, with each secret's outcome, also when some
			// failed; nothing when rotor failed before the first.
			if out.json() && run.Secrets != nil {
				if perr := writeJSON(cmd.OutOrStdout(), run); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	out.register(cmd, "text")
	cmd.Flags().BoolVar(&due, "due", false, "rotate every secret that is due")
	cmd.Flags().BoolVar(&all, "all", false, "rotate every configured secret")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be done without changing anything")
	cmd.Flags().BoolVar(&abort, "abort", false, "unwind the unfinished rotation of NAME")
	cmd.Flags().IntVar(&parallel, "parallel", 0, "with --due or --all, rotate up to N secrets at once (default: "+parallelDefaults+")")
	return cmd
}

// Default --parallel per store type. Rotations of different secrets share
// nothing but the store and the audit log, so overlapping them hides the
// latency of each write (a Vault round trip, an fsync). AWS Secrets
// Manager's write APIs are throttled per account (a few dozen requests
// per second), so rotor stays well below that.
var storeParallel = map[string]int{"file": 8, "vault": 16, "awssm": 4}

// parallelDefaults documents storeParallel in --help.
const parallelDefaults = "8 on the file store, 16 on Vault, 4 on AWS Secrets Manager"

func defaultParallel(storeType string) int {
	if n, ok := storeParallel[storeType]; ok {
		return n
	}
	return 1
}

// rotateAll rotates names, up to parallel at once. Each rotation takes
// its secret's lease in the store as a single rotation does, so running
// them side by side changes nothing about who may rotate what.
func (a *app) rotateAll(ctx context.Context, out io.Writer, names []string, onlyDue, dryRun bool, parallel int) (api.RotateRun, error) {
	secs := make([]rotation.Secret, len(names))
	for i, name := range names {
		sec, err := a.secret(name)
		if err != nil {
			return api.RotateRun{}, err
		}
		secs[i] = sec
	}
	// One lease holder for the whole run, set before the goroutines
	// start (the engine would otherwise pick one lazily, racing).
	if a.engine.Holder == "" {
		a.engine.Holder = rotation.NewHolder()
	}
	errs := make([]error, len(secs))
	run := api.RotateRun{Secrets: make([]api.RotateItem, len(secs))}
	work := make(chan int)
	var wg sync.WaitGroup
	workers := min(max(parallel, 1), len(secs))
	if workers > 1 {
		// Progress lines of secrets rotated side by side would overwrite
		// each other: one line reports the run.
		defer a.progress.startRun("rotate", len(secs))()
	}
	for range workers {
		wg.Go(func() {
			for i := range work {
				a.progress.runStarted()
				run.Secrets[i], errs[i] = a.rotateOne(ctx, out, secs[i], onlyDue, dryRun)
				a.progress.runDone(errs[i])
			}
		})
	}
	for i := range secs {
		work <- i
	}
	close(work)
	wg.Wait()
	return run, errors.Join(errs...)
}

// rotateOne rotates sec, or only says what it would do (dryRun) or that
// it is not due (onlyDue). It returns the secret's entry of the JSON
// document, and prints a line to out.
func (a *app) rotateOne(ctx context.Context, out io.Writer, sec rotation.Secret, onlyDue, dryRun bool) (api.RotateItem, error) {
	name := sec.Name
	item := api.RotateItem{Result: api.Result{Secret: name}, Steps: []api.PlanStep{}}
	fail := func(err error) (api.RotateItem, error) {
		item.Outcome, item.Error = api.OutcomeFailed, errorDetail(err)
		return item, err
	}
	s, ver, err := a.engine.Load(ctx, name)
	if err != nil {
		return fail(err)
	}
	now := a.now().UTC()
	notDue := func(s *store.Secret) (api.RotateItem, error) {
		next := sec.NextRotation(s)
		fmt.Fprintf(out, "%s: not due (next rotation %s)\n", name, next.Format(time.RFC3339))
		item.Outcome, item.NextRotationAt = api.OutcomeNotDue, api.TimeOf(next.UTC())
		return item, nil
	}
	if onlyDue && !a.engine.Due(s, sec, now) {
		return notDue(s)
	}
	if dryRun {
		var pl plan
		err := a.planRotate(&pl, sec, s, now)
		io.WriteString(out, pl.String())
		item.Outcome, item.Plan, item.Steps = api.OutcomeDryRun, pl.String(), pl.Steps()
		if err != nil {
			return fail(err)
		}
		return item, nil
	}
	var res rotation.Result
	if onlyDue {
		res, err = a.engine.RotateDue(ctx, sec, s, ver, now)
	} else {
		res, err = a.engine.RotateLoaded(ctx, sec, s, ver)
	}
	if errors.Is(err, rotation.ErrNotDue) {
		// Another rotor rotated it since the load above.
		if s, _, err = a.engine.Load(ctx, name); err != nil {
			return fail(err)
		}
		return notDue(s)
	}
	if err != nil {
		return fail(err)
	}
	item.Outcome, item.Result = api.OutcomeRotated, api.ResultOf(res)
	verb := "rotated"
	if res.Resumed {
		verb = "resumed and rotated"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s (rotation %s): current %s", name, verb, res.Rotation, res.Current)
	if res.Previous != "" {
		fmt.Fprintf(&b, ", previous %s valid for %s", res.Previous, sec.Grace)
	}
	b.WriteByte('\n')
	io.WriteString(out, b.String())
	return item, nil
}

// lineWriter serialises writes, so that the lines of rotations running in
// parallel (each written in one call) never mix, and keeps them out of
// the way of the progress line on a terminal.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
	p  *progress // nil: none
}

func (l *lineWriter) Write(b []byte) (n int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.p.above(func() { n, err = l.w.Write(b) })
	return n, err
}

// stepOrStart names a recorded step ("start" before the first).
func stepOrStart(s store.Step) string {
	return api.StepName(s)
}

func printStep(out io.Writer, name string, step store.Step, s *store.Secret) {
	switch step {
	case rotation.StepPrepared:
		fmt.Fprintf(out, "%s: prepare  ok  pending key %s saved before the issuer sees it\n", name, s.Pending.ID)
	case rotation.StepApplied:
		fmt.Fprintf(out, "%s: apply    ok  issuer set to %s\n", name, s.Pending.ID)
	case store.StepCreate:
		src := "minted"
		if s.Pending != nil && s.Pending.Source == store.SourceStaged {
			src = "staged"
		}
		fmt.Fprintf(out, "%s: create   ok  pending key %s (%s)\n", name, s.Pending.ID, src)
	case store.StepTest:
		fmt.Fprintf(out, "%s: test     ok  issuer accepts %s\n", name, s.Pending.ID)
	case store.StepPromote:
		msg := fmt.Sprintf("current is %s", s.Current.ID)
		if s.Previous != nil {
			msg += fmt.Sprintf(", previous %s valid until %s", s.Previous.ID, s.Previous.ExpiresAt.Format(time.RFC3339))
		}
		fmt.Fprintf(out, "%s: promote  ok  %s\n", name, msg)
	case store.StepReload:
		fmt.Fprintf(out, "%s: reload   ok\n", name)
	case store.StepVerify:
		fmt.Fprintf(out, "%s: verify   ok\n", name)
	case store.StepFinish:
		fmt.Fprintf(out, "%s: finish   ok\n", name)
	}
}

// abort unwinds the unfinished rotation of name; its entry of the JSON
// document has outcome aborted, and kind rollback when the abort rolled
// back a promoted key.
func (a *app) abort(ctx context.Context, out io.Writer, name string) (api.RotateItem, error) {
	sec, err := a.secret(name)
	if err != nil {
		return api.RotateItem{}, err
	}
	res, err := a.engine.Abort(ctx, sec)
	if err != nil {
		return api.RotateItem{}, err
	}
	item := api.RotateItem{Outcome: api.OutcomeAborted, Result: api.ResultOf(res), Steps: []api.PlanStep{}}
	if res.Kind == store.OpRollback {
		// After promote an abort is a rollback; an interrupted one is
		// resumed.
		fmt.Fprintf(out, "%s: rolled back (rollback %s); current is %s\n", name, res.Rotation, res.Current)
		return item, nil
	}
	fmt.Fprintf(out, "%s: aborted rotation %s; current is %s\n", name, res.Rotation, res.Current)
	return item, nil
}
