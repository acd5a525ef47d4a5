package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/store/vault"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "history NAME [-o table|json]",
		Short: "List a secret's stored versions with their key ids and writers (Vault store)",
		Long: `History lists the KV v2 versions of a secret in the Vault store: when each
was written, by whom, the key id in each slot and the rotation step, so the
store's own history backs up the audit log. Values are never shown.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "table" && output != "json" {
				return usagef("history: --output must be table or json")
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			vs, ok := a.store.(*vault.Store)
			if !ok {
				return fmt.Errorf("history needs the vault store (this config uses %s; see `rotor audit tail`)", a.cfg.Store.Type)
			}
			if _, err := a.cfg.Secret(args[0]); err != nil {
				return err
			}
			entries, err := vs.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(entries)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
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
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}
