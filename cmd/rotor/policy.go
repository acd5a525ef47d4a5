package main

import (
	"cmp"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider/postgres"
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
values), app (read the values it consumes). For PostgreSQL it prints the
grants of the admin connection the postgres provider uses.`,
	}
	cmd.AddCommand(newPolicyAWSCmd(g), newPolicyVaultCmd(g), newPolicyPostgresCmd(g))
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
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "aws --role admin|ci|app|viewer",
		Short: "Print an IAM policy (JSON) for AWS Secrets Manager",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			r, err := authz.ParseRole(role)
			if err != nil {
				return usageError{err}
			}
			o := awssm.PolicyOptions{Account: account, Region: region, Partition: partition, KMSKeyARN: kms}
			if cfg, err := config.Load(g.config); err == nil && cfg.Store.AWSSM != nil {
				o.Prefix = cfg.Store.AWSSM.Prefix
				o.AuditTable = cfg.Audit.Table
				if o.Region == "" {
					o.Region = cfg.Store.AWSSM.Region
				}
			}
			p, err := awssm.Policy(r, o)
			if err != nil {
				return usageError{err}
			}
			return printPolicy(cmd, out, api.Policy{Target: "aws", Role: string(r), Format: "json", Policy: p})
		},
	}
	out.register(cmd, "text")
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
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "vault --role admin|ci|app|viewer",
		Short: "Print a Vault policy (HCL) for the KV v2 mount and prefix",
		Long: `Print a least-privilege Vault policy for the configured KV v2 mount and
prefix (store.vault.mount and store.vault.prefix, or --mount and --prefix).
Load it with: rotor policy vault --role ci | vault policy write rotor-ci -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
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
			return printPolicy(cmd, out, api.Policy{Target: "vault", Role: string(r), Format: "hcl", Policy: p})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().StringVar(&role, "role", "", "role: "+roleNames())
	cmd.Flags().StringVar(&mount, "mount", "", "KV v2 mount (default: the config's, else "+vault.DefaultMount+")")
	cmd.Flags().StringVar(&prefix, "prefix", "", "path prefix under the mount (default: the config's, else "+vault.DefaultPrefix+")")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func newPolicyPostgresCmd(g *globals) *cobra.Command {
	var role string
	var version int
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "postgres --role ADMIN_ROLE",
		Short: "Print the SQL grants of the PostgreSQL admin connection (no superuser)",
		Long: `Print the SQL that gives ADMIN_ROLE, the login role of the postgres
provider's admin connection, what it needs and no more: CREATEROLE, plus,
on PostgreSQL 16 and later, ADMIN OPTION on each managed role and template
role (without INHERIT or SET, so it cannot read their data), and
pg_signal_backend when a secret sets terminate_sessions. The managed roles
are read from the postgres secrets of the config.
Apply it as a superuser: rotor policy postgres --role rotor | psql`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			o := postgres.PolicyOptions{AdminRole: role, ServerVersion: version}
			if cfg, err := config.Load(g.config); err == nil {
				for _, sc := range cfg.Secrets {
					po, ok := sc.ProviderOptions.(postgres.Options)
					if !ok {
						continue
					}
					po = po.WithDefaults()
					o.Roles = append(o.Roles, po.Roles...)
					if po.TemplateRole != "" {
						o.TemplateRoles = append(o.TemplateRoles, po.TemplateRole)
					}
					o.TerminateSessions = o.TerminateSessions || po.TerminateSessions
				}
			}
			p, err := postgres.Policy(o)
			if err != nil {
				return usageError{err}
			}
			return printPolicy(cmd, out, api.Policy{Target: "postgres", Role: role, Format: "sql", Policy: p})
		},
	}
	out.register(cmd, "text")
	cmd.Flags().StringVar(&role, "role", "", "login role of rotor's admin connection")
	cmd.Flags().IntVar(&version, "server-version", 16, "PostgreSQL major version of the server (grants differ before 16)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

// printPolicy prints doc.Policy, or with -o json the document (the policy
// text in a string, e.g. for jq -r .policy).
func printPolicy(cmd *cobra.Command, out outputFlag, doc api.Policy) error {
	doc.Policy = strings.TrimRight(doc.Policy, "\n") + "\n"
	return out.print(cmd.OutOrStdout(), doc, func(w io.Writer) error {
		_, err := io.WriteString(w, doc.Policy)
		return err
	})
}
