package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
)

func newRollbackCmd(g *globals) *cobra.Command {
	var dryRun bool
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "rollback NAME [--dry-run]",
		Short: "Emergency rollback: make the previous key current again",
		Long: `Rollback promotes previous back to current, sets the failed key aside for
revocation (or keeps it as previous when keep_failed_as_previous is set),
then runs the secret's reload and verify hooks. It refuses when previous is
empty, revoked or expired, and while a rotation is unfinished (use
rotate --abort for that). When the issuer deletes the restored key on its
own (a Clerk key rotated out with a deletion delay), it warns with the
deadline; the schedule makes the secret due half a grace period before it.
While a reload hook or verify check runs, stderr shows that it is still
running.

--dry-run says what the rollback would do (which key becomes current again,
what happens to the current one, which reload hooks, checks and consumers
run) or why it would refuse, and exits as the rollback would, without
changing anything, writing the audit log or calling the issuer.`,
		Example: `  rotor rollback clerk-secret-key --dry-run
  rotor rollback clerk-secret-key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			a.progress = g.newProgress()
			sec, err := a.secret(args[0])
			if err != nil {
				return err
			}
			if dryRun {
				s, _, err := a.engine.Load(cmd.Context(), sec.Name)
				if err != nil {
					return err
				}
				var pl plan
				err = a.planRollback(&pl, sec, s)
				doc := api.DryRun{Operation: "rollback", Secrets: []api.DryRunItem{{Secret: sec.Name, Plan: pl.String(), Steps: pl.Steps(), Error: errorDetail(err)}}}
				if perr := out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
					_, werr := io.WriteString(w, pl.String())
					return werr
				}); perr != nil {
					return perr
				}
				return err
			}
			res, err := a.engine.Rollback(cmd.Context(), sec)
			if err != nil {
				return err
			}
			if err := out.print(cmd.OutOrStdout(), api.ResultOf(res), func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: rolled back; current is %s\n", res.Secret, res.Current)
				return err
			}); err != nil {
				return err
			}
			if s, _, err := a.engine.Load(cmd.Context(), args[0]); err == nil && s.Current != nil {
				if exp := s.Current.IssuerExpiresAt(); !exp.IsZero() {
					fmt.Fprintf(cmd.ErrOrStderr(), "rotor: warning: %s: the issuer deletes key %s at %s (it was rotated out with a deletion delay); rotate before then: `rotor rotate --due` does from %s\n",
						res.Secret, s.Current.ID, exp.UTC().Format(time.RFC3339), sec.NextRotation(s).UTC().Format(time.RFC3339))
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what the rollback would do, or why it would refuse, without changing anything")
	out.register(cmd, "text")
	return cmd
}
