package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/rotation"
)

func newRevokeCmd(g *globals) *cobra.Command {
	var expired, force, dryRun bool
	var orphanChecked string
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "revoke (NAME | --expired) [--force] [--dry-run] | NAME --orphan-checked REQUEST_ID",
		Short: "Revoke the previous key (and set-aside keys) at the issuer once their grace period is over",
		Long: `Revoke revokes a secret's previous key at its provider and clears the slot,
together with keys set aside by rollbacks and earlier rotations. It refuses
to revoke a previous key before its grace period ends unless --force is given
(recorded in the audit log as forced). --expired revokes what has expired
across every secret and skips the rest, for cron jobs.

Providers that cannot revoke by API (Clerk instance keys in manual mode) say
which key to delete at the issuer and keep it until a later revoke (the same
command, run again once the key is deleted) checks it is gone. Where the issuer deletes the key itself
at the end of a delay (Clerk platform mode), revoke confirms it is gone and
fails, to be run again, while the issuer still accepts it.

A revoke marks the key "revoking" in the store before it asks the issuer,
so a revoke that dies midway is finished by the next run of any command, and
the key is never made current again. The key consumers were last reloaded
with is never revoked until the reload of its successor has completed.

--orphan-checked REQUEST_ID dismisses a possibly orphaned key that rotor
status reports (an interrupted mint whose provider cannot say what it
created), once you have checked the issuer and revoked the key there if it
exists. The dismissal is audited.

--dry-run says which keys revoke would revoke and how (the issuer call, or
the key to delete in a dashboard), which it would skip or refuse and why,
and exits as revoke would, without changing anything, writing the audit log
or calling the issuer. It asks the secret's consumers which key they use,
as revoke does.`,
		Example: `  rotor revoke --expired
  rotor revoke clerk-secret-key
  rotor revoke demo --force
  rotor revoke --expired --dry-run
  rotor revoke demo --orphan-checked 20261101T120000Z-3f2a9c1d-mint-0b8e7f6a`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == expired {
				return usagef("revoke: give exactly one of NAME or --expired")
			}
			if orphanChecked != "" && (expired || force || dryRun) {
				return usagef("revoke: --orphan-checked takes a NAME and no other flag")
			}
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			if orphanChecked != "" {
				sec, err := a.secret(args[0])
				if err != nil {
					return err
				}
				if err := a.engine.DismissOrphan(cmd.Context(), sec, orphanChecked); err != nil {
					return err
				}
				return out.print(cmd.OutOrStdout(), api.OrphanDismissed{Secret: args[0], RequestID: orphanChecked}, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "%s: possibly orphaned key of request %s dismissed\n", args[0], orphanChecked)
					return err
				})
			}
			names := args
			if expired {
				names = a.names()
			}
			// Text lines as each secret is done; in JSON mode, one
			// document at the end, also when some failed.
			var lines io.Writer = io.Discard
			if !out.json() {
				lines = cmd.OutOrStdout()
			}
			var errs []error
			run := api.RevokeRun{Secrets: []api.RevokeItem{}}
			plans := api.DryRun{Operation: "revoke", Secrets: []api.DryRunItem{}}
			for _, name := range names {
				sec, err := a.secret(name)
				if err != nil {
					return err
				}
				opts := rotation.RevokeOptions{Force: force, ExpiredOnly: expired}
				if dryRun {
					var pl plan
					s, _, err := a.engine.Load(cmd.Context(), name)
					if err == nil {
						err = a.planRevoke(cmd.Context(), &pl, sec, s, opts)
					}
					_, _ = io.WriteString(lines, pl.String())
					plans.Secrets = append(plans.Secrets, api.DryRunItem{Secret: name, Plan: pl.String(), Steps: pl.Steps(), Error: errorDetail(err)})
					if err != nil {
						errs = append(errs, err)
					}
					continue
				}
				res, err := a.engine.Revoke(cmd.Context(), sec, opts)
				res.Secret = name
				run.Secrets = append(run.Secrets, api.RevokeItem{Revoked: api.RevokedOf(res), Error: errorDetail(err)})
				for _, id := range res.Revoked {
					fmt.Fprintf(lines, "%s: revoked key %s\n", name, id)
				}
				if expired && len(res.Waiting) > 0 {
					fmt.Fprintf(lines, "%s: %s still within grace\n", name, strings.Join(res.Waiting, ", "))
				}
				if err == nil && len(res.Revoked) == 0 && !expired {
					fmt.Fprintf(lines, "%s: nothing to revoke\n", name)
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			if out.json() {
				var doc any = run
				if dryRun {
					doc = plans
				}
				if err := writeJSON(cmd.OutOrStdout(), doc); err != nil {
					return err
				}
			}
			return errors.Join(errs...)
		},
	}
	out.register(cmd, "text")
	cmd.Flags().BoolVar(&expired, "expired", false, "revoke every expired key of every secret")
	cmd.Flags().BoolVar(&force, "force", false, "revoke before the grace period ends (audited as forced)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "say what revoke would do, or why it would refuse, without changing anything")
	cmd.Flags().StringVar(&orphanChecked, "orphan-checked", "", "dismiss the possibly orphaned key of this mint request id, checked at the issuer")
	return cmd
}
