package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/store"
)

func newGetCmd(g *globals) *cobra.Command {
	var slot string
	var reveal bool
	cmd := &cobra.Command{
		Use:   "get NAME [--slot current|previous|next|pending] [--reveal]",
		Short: "Print a key id, or with --reveal the key itself, for piping",
		Long: `Get prints the key id in a slot (default current). With --reveal it prints
the secret value itself and nothing else, for piping into another program;
every reveal is recorded in the audit log.`,
		Example: `  rotor get demo
  rotor get demo --reveal | my-app --key-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sl, err := store.ParseSlot(slot)
			if err != nil {
				return usageError{err}
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
			if !reveal {
				fmt.Fprintln(cmd.OutOrStdout(), k.ID)
				return nil
			}
			if _, err := a.audit.Append(cmd.Context(), audit.Event{Initiator: g.initiatorName(), Action: "get.reveal", Secret: args[0], KeyID: k.ID, Status: audit.StatusSucceeded, Detail: "slot " + string(sl)}); err != nil {
				return err
			}
			fmt.Fprintln(g.rawStdout, k.Value)
			return nil
		},
	}
	cmd.Flags().StringVar(&slot, "slot", "current", "slot to read: current, previous, next or pending")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "print the secret value itself (audited)")
	return cmd
}
