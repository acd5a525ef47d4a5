package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/store"
)

func newGetCmd(g *globals) *cobra.Command {
	var slot string
	var reveal bool
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "get NAME [--slot current|previous|next|pending] [--reveal]",
		Short: "Print a key id, or with --reveal the key itself, for piping",
		Long: `Get prints the key id in a slot (default current). With --reveal it prints
the secret value itself and nothing else, for piping into another program;
every reveal is recorded in the audit log.

With -o json it prints api.Get: the secret, slot and key id, and the value
only with --reveal.`,
		Example: `  rotor get demo
  rotor get demo --reveal | my-app --key-stdin
  rotor get demo -o json | jq -r .key_id`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sl, err := store.ParseSlot(slot)
			if err != nil {
				return usageError{err}
			}
			if err := out.check(cmd); err != nil {
				return err
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			sc, err := a.cfg.Secret(args[0])
			if err != nil {
				return err
			}
			s, ver, err := a.engine.Load(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if ver == store.NoVersion {
				return fmt.Errorf("%s has no keys yet; %s", args[0], firstKeyHint(sc))
			}
			k := s.Slot(sl)
			if k == nil {
				return fmt.Errorf("%s: slot %s is empty", args[0], sl)
			}
			doc := api.Get{Secret: args[0], Slot: string(sl), KeyID: k.ID}
			if !reveal {
				return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
					_, err := fmt.Fprintln(w, k.ID)
					return err
				})
			}
			if _, err := a.audit.Append(cmd.Context(), audit.Event{Initiator: g.initiatorName(), Action: "get.reveal", Secret: args[0], KeyID: k.ID, Status: audit.StatusSucceeded, Detail: "slot " + string(sl)}); err != nil {
				return err
			}
			// Straight to stdout, byte for byte (see globals.rawStdout).
			if out.json() {
				doc.Value = k.Value
				return writeJSON(g.rawStdout, doc)
			}
			fmt.Fprintln(g.rawStdout, k.Value)
			return nil
		},
	}
	out.register(cmd, "text")
	cmd.Flags().StringVar(&slot, "slot", "current", "slot to read: current, previous, next or pending")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print the secret value itself (audited)")
	return cmd
}
