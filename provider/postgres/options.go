package postgres

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/norm"

	"github.com/rotor-dev/rotor/field"
)

// Strategy is how a secret's password is rotated.
type Strategy string

// The strategies.
const (
	// AlternatingUsers keeps two login roles and sets a fresh password on
	// the one that is not current, so the previous role keeps working
	// through the grace period (zero downtime at the database).
	AlternatingUsers Strategy = "alternating_users"
	// SingleUser changes the password of one role. The old password stops
	// working at once: there is no grace period at the database.
	SingleUser Strategy = "single_user"
)

// RevokeMode is what revoking a role's old credential does.
type RevokeMode string

// The revoke modes.
const (
	// RevokePasswordAndNologin sets an unknown random password and NOLOGIN.
	RevokePasswordAndNologin RevokeMode = "password_and_nologin"
	// RevokePassword sets an unknown random password.
	RevokePassword RevokeMode = "password"
	// RevokeNologin sets NOLOGIN and keeps the password.
	RevokeNologin RevokeMode = "nologin"
)

// Defaults applied where the options are silent.
const (
	DefaultStrategy       = AlternatingUsers
	DefaultRevoke         = RevokePasswordAndNologin
	DefaultPasswordLength = 32
	// DefaultPasswordAlphabet is URL- and shell-safe: a connection URL
	// holding the password needs no escaping.
	DefaultPasswordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	DefaultConnectTimeout   = 30 * time.Second
	// MinPasswordBits is the least entropy a generated password may have.
	MinPasswordBits = 128
	// maxRoleName is PostgreSQL's NAMEDATALEN-1: longer names are cut.
	maxRoleName = 63
)

// Options configures a PostgreSQL secret.
type Options struct {
	// Strategy is AlternatingUsers (the default) or SingleUser.
	Strategy Strategy
	// URL is the connection URL of the database without user or
	// password, e.g. postgres://db.internal:5432/app?sslmode=verify-full.
	// The managed value is this URL with a role and its password.
	URL string
	// Roles are the login roles: two for AlternatingUsers, one for
	// SingleUser. Empty with a TemplateRole: TemplateRole_a and
	// TemplateRole_b.
	Roles []string
	// TemplateRole, when set, makes rotor create a missing role of Roles
	// WITH LOGIN IN ROLE TemplateRole, so it has the template's privileges
	// through membership.
	TemplateRole string
	// AdminURLEnv names the environment variable holding the admin
	// connection URL; AdminSecret names another rotor-managed secret
	// whose current value is that URL. Exactly one is set: the admin
	// credential never goes in rotor.yaml.
	AdminURLEnv string
	AdminSecret string
	// Revoke is what revoking an old credential does (AlternatingUsers
	// only); default RevokePasswordAndNologin.
	Revoke RevokeMode
	// TerminateSessions ends the revoked role's open sessions too.
	TerminateSessions bool
	// PasswordLength is the number of characters of a generated password,
	// drawn uniformly from PasswordAlphabet.
	PasswordLength   int
	PasswordAlphabet string
	// ConnectTimeout bounds every connection the provider makes.
	ConnectTimeout time.Duration
}

// WithDefaults returns o with every unset option at its default.
func (o Options) WithDefaults() Options {
	if o.Strategy == "" {
		o.Strategy = DefaultStrategy
	}
	if o.Revoke == "" {
		o.Revoke = DefaultRevoke
	}
	if o.PasswordLength == 0 {
		o.PasswordLength = DefaultPasswordLength
	}
	if o.PasswordAlphabet == "" {
		o.PasswordAlphabet = DefaultPasswordAlphabet
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if len(o.Roles) == 0 && o.TemplateRole != "" && o.Strategy == AlternatingUsers {
		o.Roles = []string{o.TemplateRole + "_a", o.TemplateRole + "_b"}
	}
	return o
}

// Warning returns what to tell the operator about o at load time and in
// status, or "".
func (o Options) Warning() string {
	if o.WithDefaults().Strategy != SingleUser {
		return ""
	}
	return "postgres single_user: the database accepts one password at a time, so the old one stops working the moment the new one is set; " +
		"there is no grace period at the database, and reload and verify carry the whole zero-downtime burden (alternating_users has none of this)"
}

// ConsumedEnv lists what the provider reads from the environment: the
// admin connection variable (AdminURLEnv) and the PG* variables, which
// pgx reads for every connection it opens (PGPASSWORD, PGSSLKEY…). rotor
// keeps them from hooks and `rotor run` children unless the config
// passes them on.
func (o Options) ConsumedEnv() []string {
	env := []string{"PG*"}
	if o.AdminURLEnv != "" {
		env = append(env, o.AdminURLEnv)
	}
	return env
}

// Validate checks o (after [Options.WithDefaults]) and reports every
// problem as a [field.List] with paths in snake_case (roles[1],
// password_alphabet); nil when o is usable.
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs field.List
	add := func(name string, format string, args ...any) {
		errs.Addf(fieldPath(name), format, args...)
	}
	want := 2
	switch o.Strategy {
	case AlternatingUsers:
	case SingleUser:
		want = 1
		if o.TerminateSessions {
			add("terminate_sessions", "single_user has one role, whose sessions are the current ones; terminate_sessions needs alternating_users")
		}
	default:
		add("strategy", "unknown strategy %q (want %s or %s)", o.Strategy, AlternatingUsers, SingleUser)
	}
	if err := checkBaseURL(o.URL); err != nil {
		add("url", "%v", err)
	}
	switch {
	case len(o.Roles) != want && o.Strategy == AlternatingUsers:
		add("roles", "alternating_users needs two roles (or template_role alone for <template>_a and <template>_b), got %d", len(o.Roles))
	case len(o.Roles) != want && o.Strategy == SingleUser:
		add("roles", "single_user needs exactly one role, got %d", len(o.Roles))
	}
	for i, r := range o.Roles {
		if err := checkRoleName(r); err != nil {
			add(fmt.Sprintf("roles[%d]", i), "%v", err)
		}
	}
	if len(o.Roles) == 2 && o.Roles[0] == o.Roles[1] {
		add("roles[1]", "the two roles must differ")
	}
	if o.TemplateRole != "" {
		if err := checkRoleName(o.TemplateRole); err != nil {
			add("template_role", "%v", err)
		}
	}
	switch {
	case o.AdminURLEnv == "" && o.AdminSecret == "":
		add("admin_url_env", "set admin_url_env (an environment variable) or admin_secret (another secret) for the admin connection; it never goes in rotor.yaml")
	case o.AdminURLEnv != "" && o.AdminSecret != "":
		add("admin_secret", "set admin_url_env or admin_secret, not both")
	}
	switch o.Revoke {
	case RevokePasswordAndNologin, RevokePassword, RevokeNologin:
	default:
		add("revoke", "unknown revoke mode %q (want %s, %s or %s)", o.Revoke, RevokePasswordAndNologin, RevokePassword, RevokeNologin)
	}
	if err := checkAlphabet(o.PasswordAlphabet); err != nil {
		add("password_alphabet", "%v", err)
	} else if bits := passwordBits(o.PasswordLength, o.PasswordAlphabet); bits < MinPasswordBits {
		add("password_length", "%d characters from %d give %.0f bits; want at least %d", o.PasswordLength, alphabetSize(o.PasswordAlphabet), bits, MinPasswordBits)
	}
	if o.PasswordLength > 1000 {
		add("password_length", "%d characters is more than PostgreSQL clients expect (at most 1000)", o.PasswordLength)
	}
	if o.ConnectTimeout < 0 {
		add("connect_timeout", "must not be negative")
	}
	return errs.Err()
}

// fieldPath turns "roles[1]" into the path roles, 1.
func fieldPath(name string) field.Path {
	base, idx, ok := strings.Cut(name, "[")
	if i, err := strconv.Atoi(strings.TrimSuffix(idx, "]")); ok && err == nil {
		return field.NewPath(base, i)
	}
	return field.NewPath(name)
}

// checkBaseURL accepts a postgres:// URL with a host and no user or
// password.
func checkBaseURL(s string) error {
	if s == "" {
		return errors.New("url is required: the database's connection URL without user or password, e.g. postgres://db:5432/app?sslmode=verify-full")
	}
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a URL") // the parser's message may quote the URL
	}
	switch {
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return fmt.Errorf("scheme %q: want postgres://", u.Scheme)
	case u.User != nil:
		return errors.New("must not hold a user or password: rotor adds the role and its password")
	case u.Host == "":
		return errors.New("has no host")
	case strings.Trim(u.Path, "/") == "":
		return errors.New("names no database (postgres://host:port/DATABASE)")
	}
	for _, k := range []string{"user", "password", "passfile"} {
		if u.Query().Has(k) {
			return fmt.Errorf("must not set %s: rotor adds the role and its password", k)
		}
	}
	return nil
}

func checkRoleName(r string) error {
	switch {
	case r == "":
		return errors.New("empty role name")
	case len(r) > maxRoleName:
		return fmt.Errorf("role name is %d bytes; PostgreSQL keeps %d", len(r), maxRoleName)
	case !utf8.ValidString(r) || strings.ContainsRune(r, 0):
		return errors.New("role name must be valid UTF-8 without NUL")
	case strings.HasPrefix(r, "pg_"):
		return errors.New("role names starting with pg_ are reserved by PostgreSQL")
	}
	return nil
}

// checkAlphabet requires distinct characters that every client turns into
// the same bytes: printable, no spaces, unchanged by the PRECIS and SASLprep
// (NFKC) normalisation that SCRAM clients apply to passwords.
func checkAlphabet(a string) error {
	if !utf8.ValidString(a) {
		return errors.New("not valid UTF-8")
	}
	seen := map[rune]bool{}
	for _, r := range a {
		s := string(r)
		switch {
		case seen[r]:
			return fmt.Errorf("character %q appears twice", r)
		case !unicode.IsGraphic(r) || unicode.IsSpace(r) || unicode.Is(unicode.M, r):
			return fmt.Errorf("character %U is not a printable, non-space, non-combining character", r)
		case norm.NFKC.String(s) != s:
			return fmt.Errorf("character %U changes under NFKC normalisation", r)
		}
		if p, err := precis.OpaqueString.String(s); err != nil || p != s {
			return fmt.Errorf("character %U is not a stable PRECIS password character", r)
		}
		seen[r] = true
	}
	if len(seen) < 2 {
		return errors.New("needs at least two distinct characters")
	}
	return nil
}

func alphabetSize(a string) int { return utf8.RuneCountInString(a) }

func passwordBits(length int, alphabet string) float64 {
	return float64(length) * math.Log2(float64(alphabetSize(alphabet)))
}
