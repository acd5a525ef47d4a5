package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/authz"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make API bearer tokens and the hashes rotor.yaml stores",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "new",
		Short: "Print a new random API token and its hash",
		Long: `New prints a fresh token (give it to the caller, once) and the sha256 hash
to put under server.tokens in rotor.yaml. rotor stores only the hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := authz.NewToken()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token: %s\nhash:  %s\n", tok, authz.HashToken(tok))
			return nil
		},
	}, &cobra.Command{
		Use:   "hash",
		Short: "Print the hash of a token read from stdin",
		Long: `Hash prints the sha256 hash of the token on stdin, for server.tokens in
rotor.yaml. It refuses a token with less than 128 bits of entropy (a word,
"admin", a short or repetitive string), which the server would refuse too:
use ` + "`rotor token new`" + `, or 22+ random base64url or 32+ random hex characters.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 4096))
			if err != nil {
				return err
			}
			tok := strings.TrimSpace(string(b))
			if tok == "" {
				return usagef("token hash: no token on stdin")
			}
			// The server refuses such a token whatever its hash; say so
			// now rather than when the caller first uses it.
			if err := authz.CheckTokenStrength(tok); err != nil {
				return usagef("token hash: %v", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), authz.HashToken(tok))
			return nil
		},
	})
	return cmd
}
