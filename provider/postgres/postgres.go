package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// MetaRole is the [store.Key] meta entry naming the key's login role.
const MetaRole = "role"

// Option configures a [Provider] beyond its [Options].
type Option func(*Provider)

// WithGetenv sets how AdminURLEnv is read (default os.Getenv).
func WithGetenv(getenv func(string) string) Option { return func(p *Provider) { p.getenv = getenv } }

// WithSecrets sets the store AdminSecret is read from (see
// [Provider.ReadSecretsFrom]).
func WithSecrets(st store.Store) Option { return func(p *Provider) { p.secrets = st } }

// Provider rotates the password of one secret's PostgreSQL login roles.
type Provider struct {
	name    string
	o       Options
	getenv  func(string) string
	secrets store.Store
	base    *url.URL
}

var (
	_ provider.Provider       = (*Provider)(nil)
	_ provider.Preparer       = (*Provider)(nil)
	_ provider.PromoteChecker = (*Provider)(nil)
)

// New returns the provider of the secret called name. o takes its
// defaults and is validated here too, so Go callers get the same checks as
// rotor.yaml.
func New(name string, o Options, opts ...Option) (*Provider, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if o.AdminSecret == name {
		return nil, errors.New("postgres: admin_secret names this secret itself")
	}
	base, _ := url.Parse(o.URL) // checked by Validate
	p := &Provider{name: name, o: o, getenv: os.Getenv, base: base}
	for _, opt := range opts {
		opt(p)
	}
	return p, nil
}

// ReadSecretsFrom sets the store AdminSecret is read from, at every use,
// so that a rotated admin credential is picked up at once. rotor wires its
// own store here.
func (p *Provider) ReadSecretsFrom(st store.Store) { p.secrets = st }

// Prepare picks the role to rotate and a fresh password for it, and
// returns its connection URL. It changes nothing at the database.
func (p *Provider) Prepare(_ context.Context, req provider.MintRequest) (provider.Credential, error) {
	role := p.o.Roles[0]
	if p.o.Strategy == AlternatingUsers {
		if req.Current != nil {
			if cur, _, err := p.parseKey(req.Current.Value); err == nil && cur == role {
				role = p.o.Roles[1]
			}
		}
		if prev := req.Previous; prev != nil {
			if r, _, err := p.parseKey(prev.Value); err == nil && r == role {
				return provider.Credential{}, fmt.Errorf("postgres: role %q still serves the previous key %s until %s; "+
					"revoke it first (`rotor revoke %s` once its grace period is over, or with --force), then rotate",
					role, prev.ID, prev.ExpiresAt.UTC().Format(time.RFC3339), p.name)
			}
		}
	}
	password, err := generatePassword(p.o.PasswordLength, p.o.PasswordAlphabet)
	if err != nil {
		return provider.Credential{}, fmt.Errorf("postgres: %w", err)
	}
	return provider.Credential{Value: p.keyURL(role, password), Meta: map[string]string{MetaRole: role}}, nil
}

// Mint prepares and applies at once, for callers other than the engine
// (which calls Prepare and Apply itself, saving the value in between).
func (p *Provider) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	c, err := p.Prepare(ctx, req)
	if err != nil {
		return c, err
	}
	return c, p.Apply(ctx, store.Key{Value: c.Value, ID: "new"})
}

// Apply sets the key's password on its role, with LOGIN, creating the role
// IN ROLE the template when it is missing and a template is configured. It
// is idempotent: applying the same key again sets the same password.
func (p *Provider) Apply(ctx context.Context, k store.Key) error {
	role, password, err := p.parseKey(k.Value)
	if err != nil {
		return fmt.Errorf("postgres: key %s: %w: %w", k.ID, err, provider.ErrNotApplied)
	}
	verifier, err := scramVerifier(password)
	if err != nil {
		return fmt.Errorf("postgres: %w: %w", err, provider.ErrNotApplied)
	}
	return p.inTx(ctx, "set the password of role "+quoteName(role), role, func(tx pgx.Tx) error {
		exists, _, err := roleInfo(ctx, tx, role)
		switch {
		case err != nil:
			return err
		case exists:
			return execf(ctx, tx, "ALTER ROLE %I WITH LOGIN PASSWORD %L", role, verifier)
		case p.o.TemplateRole != "":
			return execf(ctx, tx, "CREATE ROLE %I WITH LOGIN PASSWORD %L IN ROLE %I", role, verifier, p.o.TemplateRole)
		}
		return fmt.Errorf("role %s does not exist: create it, or set template_role so rotor creates it", quoteName(role))
	})
}

// Test connects with value and runs SELECT 1. A refused login (SQLSTATE
// 28P01 wrong password, 28000 no such role or NOLOGIN) is
// [provider.ErrRejected]; anything else is an unknown answer.
func (p *Provider) Test(ctx context.Context, value string) error {
	if _, _, err := p.parseKey(value); err != nil {
		return fmt.Errorf("postgres: %w: %w", err, provider.ErrRejected)
	}
	conn, err := p.connect(ctx, value)
	if err != nil {
		if authFailed(err) {
			return fmt.Errorf("postgres: %w: %w", err, provider.ErrRejected)
		}
		return fmt.Errorf("postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: SELECT 1: %w", err)
	}
	return nil
}

// Revoke makes the key's role stop accepting it (alternating_users): an
// unknown random password and/or NOLOGIN, then, if configured, the role's
// sessions are terminated. It acts only while the role still accepts the
// key, checked by logging in with it under a lock that Apply takes too, so
// revoking an old key never locks a role a later rotation has reused; a
// role that already refuses the key is left alone, which makes Revoke
// idempotent. With single_user it does nothing: the role's password was
// replaced when its successor was applied.
func (p *Provider) Revoke(ctx context.Context, k store.Key) error {
	if p.o.Strategy == SingleUser {
		return nil
	}
	role, _, err := p.parseKey(k.Value)
	if err != nil {
		return &provider.ActionRequiredError{Action: fmt.Sprintf("postgres: key %s is not a connection URL for a role of this secret (%v); revoke it by hand", k.ID, err)}
	}
	terminate := false
	err = p.inTx(ctx, "revoke key "+k.ID+" of role "+quoteName(role), role, func(tx pgx.Tx) error {
		exists, canLogin, err := roleInfo(ctx, tx, role)
		if err != nil || !exists {
			return err
		}
		switch probe := p.Test(ctx, k.Value); {
		case probe == nil:
			terminate = true
			return p.lock(ctx, tx, role)
		case errors.Is(probe, provider.ErrRejected):
			// Already revoked (NOLOGIN, which a reuse would have lifted)
			// or reused with a new password: nothing to change.
			terminate = !canLogin
			return nil
		default:
			return fmt.Errorf("check whether the role still accepts the key: %w", probe)
		}
	})
	if err != nil || !terminate || !p.o.TerminateSessions {
		return err
	}
	return p.terminate(ctx, role)
}

// lock applies the revoke mode to role.
func (p *Provider) lock(ctx context.Context, tx pgx.Tx, role string) error {
	if p.o.Revoke == RevokeNologin {
		return execf(ctx, tx, "ALTER ROLE %I WITH NOLOGIN", role)
	}
	unknown, err := generatePassword(DefaultPasswordLength, DefaultPasswordAlphabet)
	if err != nil {
		return err
	}
	verifier, err := scramVerifier(unknown)
	if err != nil {
		return err
	}
	if p.o.Revoke == RevokePassword {
		return execf(ctx, tx, "ALTER ROLE %I WITH PASSWORD %L", role, verifier)
	}
	return execf(ctx, tx, "ALTER ROLE %I WITH NOLOGIN PASSWORD %L", role, verifier)
}

// terminate ends role's sessions.
func (p *Provider) terminate(ctx context.Context, role string) error {
	conn, err := p.admin(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	// From PostgreSQL 14 on, wait (up to terminateWait) until each session
	// has ended, so that revoke returns with the sessions gone.
	q := "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()"
	args := []any{role}
	if serverVersionNum(ctx, conn) >= 140000 {
		q = "SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()"
		args = append(args, terminateWait.Milliseconds())
	}
	_, err = conn.Exec(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("postgres: terminate the sessions of role %s: %w%s", quoteName(role), err, grantHint(err, role))
	}
	return nil
}

// terminateWait bounds how long revoke waits for a terminated session to
// end (PostgreSQL 14 and later).
const terminateWait = 10 * time.Second

// serverVersionNum returns the server's version number (150004), or 0.
func serverVersionNum(ctx context.Context, conn *pgx.Conn) int {
	var v string
	if err := conn.QueryRow(ctx, "SHOW server_version_num").Scan(&v); err != nil {
		return 0
	}
	n, _ := strconv.Atoi(v)
	return n
}

// CheckPromote refuses a staged connection URL that is not for this
// secret's database and roles, or, with alternating users, that uses the
// current key's role.
func (p *Provider) CheckPromote(current *store.Key, candidate string) error {
	role, _, err := p.parseKey(candidate)
	if err != nil {
		return err
	}
	u, _ := url.Parse(candidate)
	if u.Host != p.base.Host || strings.Trim(u.Path, "/") != strings.Trim(p.base.Path, "/") {
		return fmt.Errorf("the key connects to %s/%s, but this secret's url is %s/%s", u.Host, strings.Trim(u.Path, "/"), p.base.Host, strings.Trim(p.base.Path, "/"))
	}
	if p.o.Strategy == AlternatingUsers && current != nil {
		if cur, _, err := p.parseKey(current.Value); err == nil && cur == role {
			return fmt.Errorf("the key uses role %s, the role of the current key; alternating users take the other role", quoteName(role))
		}
	}
	return nil
}

// keyURL is the managed value: the configured URL with role and password.
func (p *Provider) keyURL(role, password string) string {
	u := *p.base
	u.User = url.UserPassword(role, password)
	return u.String()
}

// parseKey returns the role and password of a managed value. Its errors
// never quote the value.
func (p *Provider) parseKey(value string) (role, password string, err error) {
	u, err := url.Parse(value)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil {
		return "", "", errors.New("not a postgres:// URL with a role and password")
	}
	password, ok := u.User.Password()
	if !ok || password == "" {
		return "", "", errors.New("the URL holds no password")
	}
	role = u.User.Username()
	if !slices.Contains(p.o.Roles, role) {
		return "", "", fmt.Errorf("role %s is not one of this secret's roles", quoteName(role))
	}
	return role, password, nil
}

// adminURL returns the admin connection URL from its configured source.
func (p *Provider) adminURL(ctx context.Context) (string, error) {
	if p.o.AdminSecret != "" {
		if p.secrets == nil {
			return "", fmt.Errorf("admin connection from secret %s: no store to read it from", p.o.AdminSecret)
		}
		s, _, err := p.secrets.Load(ctx, p.o.AdminSecret)
		if err != nil {
			return "", fmt.Errorf("admin connection from secret %s: %w", p.o.AdminSecret, err)
		}
		if s.Current == nil {
			return "", fmt.Errorf("admin connection from secret %s: it has no current key", p.o.AdminSecret)
		}
		return s.Current.Value, nil
	}
	v := p.getenv(p.o.AdminURLEnv)
	if v == "" {
		return "", fmt.Errorf("admin connection: environment variable %s is not set", p.o.AdminURLEnv)
	}
	return v, nil
}

func (p *Provider) admin(ctx context.Context) (*pgx.Conn, error) {
	u, err := p.adminURL(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	conn, err := p.connect(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("postgres: admin connection: %w", err)
	}
	return conn, nil
}

// connect opens a connection with the configured timeout. Its errors name
// the user and host, never the password (pgx redacts it).
func (p *Provider) connect(ctx context.Context, connURL string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connURL)
	if err != nil {
		return nil, errors.New("cannot parse the connection URL")
	}
	cfg.ConnectTimeout = p.o.ConnectTimeout
	return pgx.ConnectConfig(ctx, cfg)
}

// inTx runs fn in a transaction on the admin connection, holding the
// advisory lock of role, which serialises Apply and Revoke of one role
// across rotor processes. Every error wraps [provider.ErrNotApplied]
// unless it came from a COMMIT whose answer was lost, after which nobody
// knows whether the change was made.
func (p *Provider) inTx(ctx context.Context, what, role string, fn func(pgx.Tx) error) error {
	notApplied := func(err error) error {
		return fmt.Errorf("postgres: %s: %w%s: %w", what, err, grantHint(err, role), provider.ErrNotApplied)
	}
	conn, err := p.admin(ctx)
	if err != nil {
		return fmt.Errorf("%w: %w", err, provider.ErrNotApplied)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return notApplied(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(role)); err != nil {
		return notApplied(err)
	}
	if err := fn(tx); err != nil {
		return notApplied(err)
	}
	if err := tx.Commit(ctx); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return notApplied(err)
		}
		return fmt.Errorf("postgres: %s: commit: %w (the change may or may not have been made)", what, err)
	}
	return nil
}

// lockKey is the advisory lock id of role.
func lockKey(role string) int64 {
	h := fnv.New64a()
	h.Write([]byte("rotor/postgres/role/" + role))
	return int64(h.Sum64())
}

// roleInfo reports whether role exists and may log in.
func roleInfo(ctx context.Context, tx pgx.Tx, role string) (exists, canLogin bool, err error) {
	err = tx.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", role).Scan(&canLogin)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	return err == nil, canLogin, err
}

// execf runs a statement that cannot take bind parameters (ALTER ROLE,
// CREATE ROLE): PostgreSQL's own format() quotes the identifiers (%I) and
// literals (%L), which travel to it as bind parameters. No SQL is built by
// concatenating names or passwords.
func execf(ctx context.Context, tx pgx.Tx, format string, args ...string) error {
	var stmt string
	if err := tx.QueryRow(ctx, "SELECT format($1::text, VARIADIC $2::text[])", format, args).Scan(&stmt); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, stmt)
	return err
}

// authFailed reports a refused login: wrong password (28P01), or no such
// role or NOLOGIN (28000).
func authFailed(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}

// grantHint explains a permission error.
func grantHint(err error, role string) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		return ""
	}
	return fmt.Sprintf(" (the admin connection's role needs CREATEROLE, and on PostgreSQL 16 and later ADMIN OPTION on role %s; "+
		"`rotor policy postgres --role ADMIN_ROLE` prints the grants)", quoteName(role))
}

// quoteName quotes a role name for messages.
func quoteName(s string) string { return fmt.Sprintf("%q", s) }
