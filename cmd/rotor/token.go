package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/authz"
)

func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Make API bearer tokens and the hashes rotor.yaml stores",
	}
	var newOut, hashOut outputFlag
	newCmd := &cobra.Command{
		Use:   "new",
		Short: "Print a new random API token and its hash",
		Long: `New prints a fresh token (give it to the caller, once) and the sha256 hash
to put under server.tokens in rotor.yaml. rotor stores only the hash.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := newOut.check(cmd); err != nil {
				return err
			}
			tok, err := authz.NewToken()
			if err != nil {
				return err
			}
			doc := api.Token{Token: tok, Hash: authz.HashToken(tok)}
			return newOut.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "token: %s\nhash:  %s\n", doc.Token, doc.Hash)
				return err
			})
		},
	}
	hashCmd := &cobra.Command{
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
			if err := hashOut.check(cmd); err != nil {
				return err
			}
			// The server refuses such a token whatever its hash; say so
			// now rather than when the caller first uses it.
			if err := authz.CheckTokenStrength(tok); err != nil {
				return usagef("token hash: %v", err)
			}
			doc := api.Token{Hash: authz.HashToken(tok)}
			return hashOut.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
				_, err := fmt.Fprintln(w, doc.Hash)
				return err
			})
		},
	}
	newOut.register(newCmd, "text")
	hashOut.register(hashCmd, "text")
	cmd.AddCommand(newCmd, hashCmd)
	return cmd
}
