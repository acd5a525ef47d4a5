package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/rotation"
)

func newRevokeCmd(g *globals) *cobra.Command {
	var expired, force, confirm bool
	cmd := &cobra.Command{
		Use:   "revoke (NAME | --expired) [--force]",
		Short: "Revoke the previous key (and set-aside keys) at the issuer once their grace period is over",
		Long: `Revoke revokes a secret's previous key at its provider and clears the slot,
together with keys set aside by rollbacks and earlier rotations. It refuses
to revoke a previous key before its grace period ends unless --force is given
(recorded in the audit log as forced). --expired revokes what has expired
across every secret and skips the rest, for cron jobs.

Providers that cannot revoke by API (Clerk instance keys) say which key to
delete at the issuer and keep it until a later revoke confirms it is gone;
--confirm is that later run.`,
		Example: `  rotor revoke --expired
  rotor revoke clerk-secret-key --confirm
  rotor revoke demo --force`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == expired {
				return usagef("revoke: give exactly one of NAME or --expired")
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			names := args
			if expired {
				names = a.names()
			}
			out := cmd.OutOrStdout()
			var errs []error
			for _, name := range names {
				sec, err := a.secret(name)
				if err != nil {
					return err
				}
				res, err := a.engine.Revoke(cmd.Context(), sec, rotation.RevokeOptions{Force: force, ExpiredOnly: expired})
				for _, id := range res.Revoked {
					fmt.Fprintf(out, "%s: revoked key %s\n", name, id)
				}
				if expired && len(res.Waiting) > 0 {
					fmt.Fprintf(out, "%s: %s still within grace\n", name, strings.Join(res.Waiting, ", "))
				}
				if err == nil && len(res.Revoked) == 0 && !expired {
					fmt.Fprintf(out, "%s: nothing to revoke\n", name)
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&expired, "expired", false, "revoke every expired key of every secret")
	cmd.Flags().BoolVar(&force, "force", false, "revoke before the grace period ends (audited as forced)")
	cmd.Flags().BoolVar(&confirm, "confirm", false, "confirm a key was deleted at the issuer (checks it no longer works)")
	return cmd
}
