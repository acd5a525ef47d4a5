package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

func newRotateCmd(g *globals) *cobra.Command {
	var due, all, dryRun, abort bool
	cmd := &cobra.Command{
		Use:   "rotate (NAME | --due | --all)",
		Short: "Rotate a secret: create, test, promote, reload, verify, finish",
		Long: `Rotate runs the rotation state machine for one secret (NAME), for every
secret that is due (--due), or for all of them (--all), printing each step as
it completes. A staged next key is promoted if there is one; otherwise the
provider mints a new key. An unfinished rotation left by a crash is resumed.

--due is idempotent: a stateless cron may call it as often as it likes, and
it rotates only what is due. --abort unwinds an unfinished rotation instead:
before promote the pending key is discarded, after promote it is rolled back.`,
		Example: `  rotor rotate demo
  rotor rotate --due
  rotor rotate demo --dry-run
  rotor rotate demo --abort`,
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
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			onStep := a.engine.OnStep // ROTOR_FAULT, if set
			a.engine.OnStep = func(name string, step store.Step, s *store.Secret) {
				printStep(out, name, step, s)
				if onStep != nil {
					onStep(name, step, s)
				}
			}
			names := args
			if due || all {
				names = a.names()
			}
			if abort {
				return a.abort(cmd.Context(), out, names[0])
			}
			return a.rotateAll(cmd.Context(), out, names, due, dryRun)
		},
	}
	cmd.Flags().BoolVar(&due, "due", false, "rotate every secret that is due")
	cmd.Flags().BoolVar(&all, "all", false, "rotate every configured secret")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would be done without changing anything")
	cmd.Flags().BoolVar(&abort, "abort", false, "unwind the unfinished rotation of NAME")
	return cmd
}

func (a *app) rotateAll(ctx context.Context, out io.Writer, names []string, onlyDue, dryRun bool) error {
	var errs []error
	for _, name := range names {
		sec, err := a.secret(name)
		if err != nil {
			return err
		}
		s, _, err := a.engine.Load(ctx, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		now := a.now().UTC()
		if onlyDue && !a.engine.Due(s, sec, now) {
			fmt.Fprintf(out, "%s: not due (next rotation %s)\n", name, sec.NextRotation(s).Format(time.RFC3339))
			continue
		}
		if dryRun {
			fmt.Fprintf(out, "%s: would rotate: %s\n", name, plan(s, sec, now))
			continue
		}
		res, err := a.engine.Rotate(ctx, sec)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		verb := "rotated"
		if res.Resumed {
			verb = "resumed and rotated"
		}
		fmt.Fprintf(out, "%s: %s (rotation %s): current %s", name, verb, res.Rotation, res.Current)
		if res.Previous != "" {
			fmt.Fprintf(out, ", previous %s valid for %s", res.Previous, sec.Grace)
		}
		fmt.Fprintln(out)
	}
	return errors.Join(errs...)
}

// plan describes what a rotation of s would do, for --dry-run.
func plan(s *store.Secret, sec rotation.Secret, now time.Time) string {
	if r := s.Rotation; r != nil {
		return fmt.Sprintf("resume rotation %s after step %s (lease until %s)", r.ID, stepOrStart(r.Step), r.LeaseExpiresAt.Format(time.RFC3339))
	}
	src := "mint a new key with provider"
	if s.Next != nil {
		src = "promote staged key " + s.Next.ID
	}
	msg := src + "; test; promote"
	if s.Current != nil {
		msg += fmt.Sprintf(" (current %s becomes previous until %s)", s.Current.ID, now.Add(sec.Grace).Format(time.RFC3339))
	}
	return msg + "; reload; verify; finish"
}

func stepOrStart(s store.Step) string {
	if s == "" {
		return "start"
	}
	return string(s)
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

func (a *app) abort(ctx context.Context, out io.Writer, name string) error {
	sec, err := a.secret(name)
	if err != nil {
		return err
	}
	res, err := a.engine.Abort(ctx, sec)
	if err != nil {
		return err
	}
	if res.Kind == store.OpRollback {
		// After promote an abort is a rollback; an interrupted one is
		// resumed.
		fmt.Fprintf(out, "%s: rolled back (rollback %s); current is %s\n", name, res.Rotation, res.Current)
		return nil
	}
	fmt.Fprintf(out, "%s: aborted rotation %s; current is %s\n", name, res.Rotation, res.Current)
	return nil
}
