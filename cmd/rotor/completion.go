package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/config"
)

// Shell completion. cobra provides the `completion` command (bash, zsh,
// fish, powershell) and the hidden `__complete` command the generated
// scripts call; this file adds what only rotor knows: secret names, read
// from the config alone (a completion must be instant and must never
// need the store's credentials), and the values of flags that take one
// of a few words.

// secretArgCommands are the commands whose one argument is a secret name.
var secretArgCommands = []string{"rotate", "rollback", "revoke", "stage", "get", "history", "status"}

// addCompletions wires dynamic completions into the command tree of root.
func addCompletions(g *globals, root *cobra.Command) {
	secrets := completeSecrets(g)
	roles := make([]string, len(authz.Roles))
	for i, r := range authz.Roles {
		roles[i] = string(r)
	}
	// flagWords maps "command path/flag" to the words the flag takes.
	flagWords := map[string][]string{
		"rotor get/slot":          {"current", "previous", "next", "pending"},
		"rotor run/mode":          {"restart", "signal"},
		"rotor run/signal":        {"HUP", "USR1", "USR2"},
		"rotor policy aws/role":   roles,
		"rotor policy vault/role": roles,
	}
	_ = root.RegisterFlagCompletionFunc("config", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return []cobra.Completion{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
	})
	walk(root, func(c *cobra.Command) {
		for _, name := range secretArgCommands {
			if c.Parent() == root && c.Name() == name && c.ValidArgsFunction == nil {
				c.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
					if len(args) > 0 {
						return nil, cobra.ShellCompDirectiveNoFileComp
					}
					return secrets(cmd, args, toComplete)
				}
			}
		}
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if _, ok := c.GetFlagCompletionFunc(f.Name); ok {
				return // the command completes it itself
			}
			switch {
			case f.Name == "secret":
				_ = c.RegisterFlagCompletionFunc(f.Name, secrets)
			case f.Name == "output":
				// The human format is the flag's default (table or text).
				_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions([]string{f.DefValue, "json"}, cobra.ShellCompDirectiveNoFileComp))
			default:
				if words, ok := flagWords[c.CommandPath()+"/"+f.Name]; ok {
					_ = c.RegisterFlagCompletionFunc(f.Name, cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp))
				}
			}
		})
	})
}

// completeSecrets completes the names of the secrets in the config that
// --config (or ROTOR_CONFIG) names. A config that does not load completes
// nothing: completion never prints an error into the operator's prompt.
func completeSecrets(g *globals) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		cfg, err := config.Load(g.config)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var names []cobra.Completion
		for _, s := range cfg.Secrets {
			if strings.HasPrefix(s.Name, toComplete) {
				names = append(names, s.Name)
			}
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}

// walk calls f for c and every command under it.
func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}
