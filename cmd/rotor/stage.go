package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/store"
)

// maxStagedValue bounds what stage reads from stdin.
const maxStagedValue = store.MaxValueLen + len("\r\n")

func newStageCmd(g *globals) *cobra.Command {
	var fromStdin bool
	var fromEnv, dashboardName string
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "stage NAME (--from-stdin | --from-env VAR)",
		Short: "Pre-stage the next key; it is tested before it is accepted",
		Long: `Stage stores a key as the secret's next key, which the next rotation
promotes instead of minting one (for Clerk instance keys, created in the
dashboard, this is how a new key enters rotor). The key is tested against its
issuer first and refused if rejected. The value is read from stdin or an
environment variable, never from the command line, so it stays out of shell
history and process listings. It must be one line of UTF-8 text without NUL
(one trailing line ending is dropped), at most 64 KiB: the same rule the API
applies.

For a Clerk instance key (manual mode), --dashboard-name records the name
the key has in the Clerk Dashboard, so that revoke can say which key to
delete; run on a terminal without it, stage asks for the name there (Enter
skips: revoke then names the key by the start and end the Dashboard shows).`,
		Example: `  pbpaste | rotor stage clerk-secret-key --from-stdin
  NEW_KEY=... rotor stage clerk-secret-key --from-env NEW_KEY`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if fromStdin == (fromEnv != "") {
				return usagef("stage: give exactly one of --from-stdin or --from-env VAR")
			}
			if err := out.check(cmd); err != nil {
				return err
			}
			var value string
			if fromStdin {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), int64(maxStagedValue)+1))
				if err != nil {
					return fmt.Errorf("stage: read stdin: %w", err)
				}
				if len(b) > maxStagedValue {
					return usagef("stage: value on stdin is longer than %d bytes", maxStagedValue)
				}
				value = string(b)
			} else {
				value = g.env.getenv(fromEnv)
				if value == "" {
					return usagef("stage: environment variable %s is empty or unset", fromEnv)
				}
			}
			// One line ending (echo, a file) frames the value; anything
			// else must pass the rule every staged value passes.
			value = strings.TrimSuffix(strings.TrimSuffix(value, "\n"), "\r")
			if err := store.ValidateValue(value); err != nil {
				return usagef("stage: %v (want exactly one line of UTF-8 text)", err)
			}
			a, err := g.open(cmd.Context())
			if err != nil {
				return err
			}
			sec, err := a.secret(args[0])
			if err != nil {
				return err
			}
			if _, manual := sec.Provider.(*clerk.Provider); manual && dashboardName == "" && g.env.tty != nil {
				if name, err := askDashboardName(g.env.tty()); err != nil {
					return err
				} else if name != "" {
					dashboardName = name
				}
			}
			var meta map[string]string
			if dashboardName != "" {
				meta = map[string]string{clerk.MetaDashboardName: dashboardName}
			}
			id, err := a.engine.Stage(cmd.Context(), sec, value, meta)
			if err != nil {
				return err
			}
			return out.print(cmd.OutOrStdout(), api.Staged{Secret: sec.Name, KeyID: id}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: staged key %s as next; `rotor rotate %s` will promote it\n", sec.Name, id, sec.Name)
				return err
			})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().BoolVar(&fromStdin, "from-stdin", false, "read the key from standard input")
	cmd.Flags().StringVar(&fromEnv, "from-env", "", "read the key from environment variable `VAR`")
	cmd.Flags().StringVar(&dashboardName, "dashboard-name", "", "the key's name in the issuer's dashboard, shown when it is time to delete it")
	return cmd
}

// maxDashboardName bounds the Dashboard name stage accepts.
const maxDashboardName = 64

// askDashboardName asks the operator on tty for the key's name in the
// Clerk Dashboard; "" when there is no terminal or the operator skips.
func askDashboardName(tty io.ReadWriteCloser) (string, error) {
	if tty == nil {
		return "", nil
	}
	defer tty.Close()
	fmt.Fprint(tty, "Name of this key in the Clerk Dashboard (shown when it is time to delete it; Enter to skip): ")
	line, err := bufio.NewReader(io.LimitReader(tty, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("stage: read the Dashboard name: %w", err)
	}
	name := strings.TrimSpace(line)
	switch {
	case len(name) > maxDashboardName:
		return "", usagef("stage: a Dashboard name has at most %d characters", maxDashboardName)
	case strings.HasPrefix(name, "sk_"):
		return "", usagef("stage: that looks like a key, not its name; the key is read from stdin or --from-env only")
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "", usagef("stage: the Dashboard name has control characters")
	}
	return name, nil
}
