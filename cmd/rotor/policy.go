package main

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store/awssm"
	"github.com/rotor-dev/rotor/store/vault"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print least-privilege store policies for the admin, ci, viewer and app roles",
		Long: `Policy prints the store-side half of rotor's access control: a policy that
lets a role do what rotor needs and nothing more, for the mount, prefix and
secrets in the config. Roles: admin (everything, including destroying
versions), ci (rotate, roll back, stage, revoke), viewer (metadata, no
values), app (read the values it consumes).`,
	}
	cmd.AddCommand(newPolicyAWSCmd(g), newPolicyVaultCmd(g))
	return cmd
}

// roleNames lists rotor's roles for flag help: "admin, ci, viewer, app".
func roleNames() string {
	names := make([]string, len(authz.Roles))
	for i, r := range authz.Roles {
		names[i] = string(r)
	}
	return strings.Join(names, ", ")
}

func newPolicyAWSCmd(g *globals) *cobra.Command {
	var role, account, region, partition, kms string
	cmd := &cobra.Command{
		Use:   "aws --role admin|ci|app|viewer",
		Short: "Print an IAM policy (JSON) for AWS Secrets Manager",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := authz.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			o := awssm.PolicyOptions{Account: account, Region: region, Partition: partition, KMSKeyARN: kms}
			if cfg, err := config.Load(g.config); err == nil && cfg.Store.AWSSM != nil {
				o.Prefix = cfg.Store.AWSSM.Prefix
				if o.Region == "" {
					o.Region = cfg.Store.AWSSM.Region
				}
			}
			p, err := awssm.Policy(r, o)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(p, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "role: "+roleNames())
	cmd.Flags().StringVar(&account, "account", "", "AWS account id to narrow the ARNs to (default any)")
	cmd.Flags().StringVar(&region, "region", "", "region to narrow the ARNs to (default: the config's, else any)")
	cmd.Flags().StringVar(&partition, "partition", "", "ARN partition (default aws)")
	cmd.Flags().StringVar(&kms, "kms-key-arn", "", "customer-managed KMS key the secrets are encrypted with")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newPolicyVaultCmd(g *globals) *cobra.Command {
	var role, mount, prefix string
	cmd := &cobra.Command{
		Use:   "vault --role admin|ci|app|viewer",
		Short: "Print a Vault policy (HCL) for the KV v2 mount and prefix",
		Long: `Print a least-privilege Vault policy for the configured KV v2 mount and
prefix (store.vault.mount and store.vault.prefix, or --mount and --prefix).
Load it with: rotor policy vault --role ci | vault policy write rotor-ci -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := authz.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			o := vault.Options{Mount: mount, Prefix: prefix}
			if cfg, err := config.Load(g.config); err == nil && cfg.Store.Vault != nil {
				o.Mount = cmp.Or(mount, cfg.Store.Vault.Mount)
				o.Prefix = cmp.Or(prefix, cfg.Store.Vault.Prefix)
			}
			o = o.WithDefaults()
			p, err := vault.Policy(r, o.Mount, o.Prefix)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(p, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "role: "+roleNames())
	cmd.Flags().StringVar(&mount, "mount", "", "KV v2 mount (default: the config's, else "+vault.DefaultMount+")")
	cmd.Flags().StringVar(&prefix, "prefix", "", "path prefix under the mount (default: the config's, else "+vault.DefaultPrefix+")")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}
