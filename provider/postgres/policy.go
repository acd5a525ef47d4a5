package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PolicyOptions says whose grants [Policy] prints.
type PolicyOptions struct {
	// AdminRole is the login role of rotor's admin connection.
	AdminRole string
	// Roles are the managed login roles and TemplateRoles the template
	// roles new ones are created in, across the configured secrets.
	Roles         []string
	TemplateRoles []string
	// TerminateSessions: some secret ends old sessions at revoke.
	TerminateSessions bool
	// ServerVersion is the server's major version (e.g. 15, 16, 17).
	ServerVersion int
}

// Policy returns the SQL a superuser runs once to give rotor's admin
// connection what it needs and no more: never SUPERUSER.
//
// Up to PostgreSQL 15, CREATEROLE alone lets a role change the password
// and LOGIN of any role that is not a superuser, and grant membership in
// such roles. From PostgreSQL 16 on, CREATEROLE only covers roles on which
// the admin role holds ADMIN OPTION (which it gets for roles it creates),
// so the grants add ADMIN OPTION on each managed and template role, without
// INHERIT or SET: the admin role does not gain their privileges.
// Terminating another role's sessions needs pg_signal_backend.
func Policy(o PolicyOptions) (string, error) {
	if err := checkRoleName(o.AdminRole); err != nil {
		return "", fmt.Errorf("--role: %w", err)
	}
	if o.ServerVersion < 10 {
		return "", errors.New("server version: want a PostgreSQL major version such as 15 or 16")
	}
	admin := ident(o.AdminRole)
	var b strings.Builder
	fmt.Fprintf(&b, "-- Grants for rotor's PostgreSQL admin connection (role %s), PostgreSQL %d.\n", admin, o.ServerVersion)
	b.WriteString("-- Run once as a superuser. No SUPERUSER is granted. Set the role's password with\n")
	fmt.Fprintf(&b, "-- psql's \\password %s and put its connection URL where admin_url_env or admin_secret says.\n", admin)
	fmt.Fprintf(&b, "CREATE ROLE %s WITH LOGIN CREATEROLE;\n", admin)
	roles := slices.Concat(o.Roles, o.TemplateRoles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	if o.ServerVersion >= 16 {
		if len(roles) > 0 {
			b.WriteString("-- PostgreSQL 16+: CREATEROLE covers only roles held WITH ADMIN OPTION (roles rotor creates from\n")
			b.WriteString("-- a template are granted it automatically). INHERIT FALSE, SET FALSE: no access to their data.\n")
		}
		for _, r := range roles {
			fmt.Fprintf(&b, "GRANT %s TO %s WITH ADMIN OPTION, INHERIT FALSE, SET FALSE;\n", ident(r), admin)
		}
	} else if len(roles) > 0 {
		fmt.Fprintf(&b, "-- PostgreSQL %d: CREATEROLE alone may alter %s; note that it may alter any other\n", o.ServerVersion, strings.Join(identAll(roles), ", "))
		b.WriteString("-- non-superuser role too (PostgreSQL 16 narrows it to roles held WITH ADMIN OPTION).\n")
	}
	if o.TerminateSessions {
		b.WriteString("-- terminate_sessions: end the sessions of a revoked role.\n")
		fmt.Fprintf(&b, "GRANT pg_signal_backend TO %s;\n", admin)
	}
	return b.String(), nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func identAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = ident(s)
	}
	return out
}
