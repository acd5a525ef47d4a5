package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store/awssm"
	"github.com/rotor-dev/rotor/store/vault"
)

func newPolicyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Print least-privilege store policies for the admin, ci, app and viewer roles",
		Long: `Policy prints the store-side half of rotor's access control: a policy that
lets a role do what rotor needs and nothing more, for the mount, prefix and
secrets in the config. Roles: admin (everything, including destroying
versions), ci (rotate, roll back, stage, revoke), app (read the values it
consumes), viewer (metadata, no values).`,
	}
	cmd.AddCommand(newPolicyAWSCmd(g), newPolicyVaultCmd(g))
	return cmd
}

func newPolicyAWSCmd(g *globals) *cobra.Command {
	var role, account, region, partition, kms string
	cmd := &cobra.Command{
		Use:   "aws --role admin|ci|app|viewer",
		Short: "Print an IAM policy (JSON) for AWS Secrets Manager",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := awssm.PolicyOptions{Account: account, Region: region, Partition: partition, KMSKeyARN: kms}
			if cfg, err := config.Load(g.config); err == nil && cfg.Store.AWSSM != nil {
				o.Prefix = cfg.Store.AWSSM.Prefix
				if o.Region == "" {
					o.Region = cfg.Store.AWSSM.Region
				}
			}
			p, err := awssm.Policy(role, o)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(p, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "role: "+strings.Join(awssm.Roles(), ", "))
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
			if cfg, err := config.Load(g.config); err == nil && cfg.Store.Vault != nil {
				if mount == "" {
					mount = cfg.Store.Vault.Mount
				}
				if prefix == "" {
					prefix = cfg.Store.Vault.Prefix
				}
			}
			if mount == "" {
				mount = "secret"
			}
			if prefix == "" {
				prefix = "rotor"
			}
			p, err := vault.Policy(role, mount, prefix)
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(cmd.OutOrStdout(), strings.TrimRight(p, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "role: "+strings.Join(vault.Roles(), ", "))
	cmd.Flags().StringVar(&mount, "mount", "", "KV v2 mount (default: the config's, else secret)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "path prefix under the mount (default: the config's, else rotor)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}
