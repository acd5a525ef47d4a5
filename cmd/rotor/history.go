package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/store/vault"
)

func newHistoryCmd(g *globals) *cobra.Command {
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "history NAME [-o table|json]",
		Short: "List a secret's stored versions with their key ids and writers (Vault store)",
		Long: `History lists the KV v2 versions of a secret in the Vault store: when each
was written, by whom, the key id in each slot and the rotation step, so the
store's own history backs up the audit log. Values are never shown.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			if _, err := a.cfg.Secret(args[0]); err != nil {
				return err
			}
			vs, ok := a.store.(*vault.Store)
			if !ok {
				return fmt.Errorf("history needs the vault store (this config uses %s; see `rotor audit tail`)", a.cfg.Store.Type)
			}
			entries, err := vs.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if out.json() {
				doc := api.History{Secret: args[0], Versions: []api.HistoryVersion{}}
				for _, e := range entries {
					doc.Versions = append(doc.Versions, api.HistoryVersion{
						Version: string(e.Version), CreatedAt: e.CreatedAt.UTC(), WrittenBy: e.WrittenBy,
						CurrentKeyID: e.CurrentKeyID, PreviousKeyID: e.PreviousKeyID, NextKeyID: e.NextKeyID, PendingKeyID: e.PendingKeyID,
						Step: string(e.Step), Deleted: e.Deleted, Destroyed: e.Destroyed,
					})
				}
				return writeJSON(cmd.OutOrStdout(), doc)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tWRITTEN\tBY\tCURRENT\tPREVIOUS\tNEXT\tSTEP")
			for _, e := range entries {
				if e.Deleted || e.Destroyed {
					fmt.Fprintf(tw, "%s\t%s\t-\t(deleted)\t\t\t\n", e.Version, e.CreatedAt.UTC().Format(time.RFC3339))
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Version, e.CreatedAt.UTC().Format(time.RFC3339),
					dash(printable(e.WrittenBy)), dash(e.CurrentKeyID), dash(e.PreviousKeyID), dash(e.NextKeyID), dash(string(e.Step)))
			}
			return tw.Flush()
		},
	}
	out.register(cmd, "table")
	return cmd
}
