package vault

import (
	"errors"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/field"
)

// Defaults of [Options].
const (
	DefaultMount  = "secret"
	DefaultPrefix = "rotor"
	// DefaultMaxVersions is how many KV versions of each secret Vault
	// keeps: about ten rotations, so `rotor history` shows at least the
	// last ten (Vault's own default of 10 keeps one or two).
	DefaultMaxVersions = 100
	// DefaultKubernetesJWTFile is where Kubernetes mounts a pod's
	// service-account token.
	DefaultKubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Auth methods of [AuthOptions].
const (
	AuthToken      = "token"
	AuthAppRole    = "approle"
	AuthJWT        = "jwt"
	AuthKubernetes = "kubernetes"
)

// Options says which Vault, KV v2 mount and path prefix the store uses, and
// how it logs in.
type Options struct {
	// Address is the Vault server's URL; default $VAULT_ADDR (read by the
	// Vault client).
	Address string
	// Namespace is the Vault Enterprise namespace; default
	// $VAULT_NAMESPACE.
	Namespace string
	// Mount is the KV v2 mount; default [DefaultMount]. Leading and
	// trailing slashes are dropped.
	Mount string
	// Prefix is the path under the mount holding rotor's secrets; default
	// [DefaultPrefix].
	Prefix string
	// MaxVersions is the KV max_versions rotor sets on each secret it
	// writes; default [DefaultMaxVersions]. Older versions are pruned by
	// Vault.
	MaxVersions int
	// Auth says how to log in.
	Auth AuthOptions
}

// AuthOptions says how the store logs in to Vault. Which fields apply
// depends on Method:
//
//   - token (default): TokenFile, else $VAULT_TOKEN, else ~/.vault-token
//     (where `vault login` leaves it, read as the Vault CLI does).
//   - approle: RoleID, and the secret id from SecretIDFile, else
//     $VAULT_SECRET_ID.
//   - jwt: Role, and the JWT from JWTFile or, without one, a GitHub Actions
//     OIDC ID token requested for Audience.
//   - kubernetes: Role and the service-account token in JWTFile (default
//     [DefaultKubernetesJWTFile]).
//
// Secrets themselves (tokens, secret ids, JWTs) are never options: only the
// files or environment variables that hold them.
type AuthOptions struct {
	// Method is AuthToken (default), AuthAppRole, AuthJWT or
	// AuthKubernetes.
	Method string
	// Mount is the auth method's mount path; default the method's name.
	Mount        string
	Role         string // jwt, kubernetes
	TokenFile    string // token
	RoleID       string // approle
	SecretIDFile string // approle
	JWTFile      string // jwt, kubernetes
	Audience     string // jwt from GitHub Actions
}

// authFields lists the optional auth fields and the methods using them.
var authFields = []struct {
	name    string
	get     func(*AuthOptions) string
	methods []string
}{
	{"mount", func(a *AuthOptions) string { return a.Mount }, []string{AuthAppRole, AuthJWT, AuthKubernetes}},
	{"role", func(a *AuthOptions) string { return a.Role }, []string{AuthJWT, AuthKubernetes}},
	{"token_file", func(a *AuthOptions) string { return a.TokenFile }, []string{AuthToken}},
	{"role_id", func(a *AuthOptions) string { return a.RoleID }, []string{AuthAppRole}},
	{"secret_id_file", func(a *AuthOptions) string { return a.SecretIDFile }, []string{AuthAppRole}},
	{"jwt_file", func(a *AuthOptions) string { return a.JWTFile }, []string{AuthJWT, AuthKubernetes}},
	{"audience", func(a *AuthOptions) string { return a.Audience }, []string{AuthJWT}},
}

// WithDefaults returns o with slashes trimmed from its paths and its empty
// fields set to their defaults.
func (o Options) WithDefaults() Options {
	o.Mount = orDefault(strings.Trim(o.Mount, "/"), DefaultMount)
	o.Prefix = orDefault(strings.Trim(o.Prefix, "/"), DefaultPrefix)
	if o.MaxVersions == 0 {
		o.MaxVersions = DefaultMaxVersions
	}
	o.Auth = o.Auth.WithDefaults()
	return o
}

// WithDefaults returns a with its empty fields set to their defaults; the
// mount and service-account token only for the methods using them.
func (a AuthOptions) WithDefaults() AuthOptions {
	a.Method = orDefault(a.Method, AuthToken)
	switch a.Method {
	case AuthAppRole, AuthJWT, AuthKubernetes:
		a.Mount = orDefault(strings.Trim(a.Mount, "/"), a.Method)
	}
	if a.Method == AuthKubernetes {
		a.JWTFile = orDefault(a.JWTFile, DefaultKubernetesJWTFile)
	}
	return a
}

// ResolvePaths returns o with the relative credential files of its auth
// made relative to dir.
func (o Options) ResolvePaths(dir string) Options {
	for _, f := range []*string{&o.Auth.TokenFile, &o.Auth.SecretIDFile, &o.Auth.JWTFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(dir, *f)
		}
	}
	return o
}

// Validate reports every problem of o as a [field.List]. The mount and the
// prefix end up in API paths and in the policies [Policy] prints, so they
// are held to what both accept.
func (o Options) Validate() error {
	var errs field.List
	if o.Address != "" {
		u, err := url.Parse(o.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs.Addf(field.NewPath("address"), "invalid address %q: want a URL such as https://vault.example.com:8200", o.Address)
		}
	}
	mount := orDefault(strings.Trim(o.Mount, "/"), DefaultMount)
	if err := checkPathPart(mount); err != nil {
		errs.Addf(field.NewPath("mount"), "invalid mount %q: %v", mount, err)
	}
	prefix := orDefault(strings.Trim(o.Prefix, "/"), DefaultPrefix)
	if err := checkPathPart(prefix); err != nil {
		errs.Addf(field.NewPath("prefix"), "invalid prefix %q: %v", prefix, err)
	}
	if o.MaxVersions < 0 || o.MaxVersions > 0 && o.MaxVersions < 10 {
		errs.Addf(field.NewPath("max_versions"), "max_versions %d: want at least 10 (a rotation writes several versions)", o.MaxVersions)
	}
	errs.Add(field.NewPath("auth"), o.Auth.Validate())
	return errs.Err()
}

// Validate reports every problem of a as a [field.List]: an unknown method,
// a field the method does not use, and what the method needs.
func (a AuthOptions) Validate() error {
	var errs field.List
	method := orDefault(a.Method, AuthToken)
	switch method {
	case AuthToken, AuthAppRole, AuthJWT, AuthKubernetes:
	default:
		errs.Addf(field.NewPath("method"), "unknown auth method %q (want token, approle, jwt or kubernetes)", a.Method)
		return errs.Err()
	}
	for _, f := range authFields {
		if f.get(&a) != "" && !slices.Contains(f.methods, method) {
			errs.Addf(field.NewPath(f.name), "%s is not used by auth method %s (only by %s)", f.name, method, strings.Join(f.methods, ", "))
		}
	}
	if method == AuthToken {
		return errs.Err()
	}
	if mount := orDefault(strings.Trim(a.Mount, "/"), method); checkPathPart(mount) != nil {
		errs.Addf(field.NewPath("mount"), "invalid auth mount %q: %v", mount, checkPathPart(mount))
	}
	switch method {
	case AuthAppRole:
		if a.RoleID == "" {
			errs.Addf(field.NewPath("role_id"), "auth method approle needs a role_id")
		}
	case AuthJWT:
		if a.Role == "" {
			errs.Addf(field.NewPath("role"), "auth method jwt needs the Vault role to log in as")
		}
		if a.JWTFile != "" && a.Audience != "" {
			errs.Addf(field.NewPath("audience"), "audience applies to GitHub Actions ID tokens only; drop it or jwt_file")
		}
	case AuthKubernetes:
		if a.Role == "" {
			errs.Addf(field.NewPath("role"), "auth method kubernetes needs the Vault role to log in as")
		}
	}
	return errs.Err()
}

// checkPathPart explains why s cannot be used as a mount or prefix in Vault
// API paths and in the ACL policies rotor prints.
func checkPathPart(s string) error {
	if strings.ContainsAny(s, "*+\"\\ \t\n{}") {
		return errors.New(`must not contain spaces, quotes, braces, '\', '*' or '+'`)
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return errors.New("must not contain empty, '.' or '..' path segments")
		}
	}
	return nil
}

// ConsumedEnv lists the environment variables a store with these options
// reads, for rotor to keep them from the processes it starts (hooks,
// `rotor run` children): every VAULT_* variable, which the Vault client
// reads (VAULT_TOKEN, VAULT_ADDR, VAULT_CACERT…) and rotor's auth methods
// too, and the GitHub Actions ID token request variables when the jwt
// method asks GitHub for a token. A name ending in '*' is a prefix.
func (o Options) ConsumedEnv() []string {
	env := []string{"VAULT_*"}
	if a := o.Auth.WithDefaults(); a.Method == AuthJWT && a.JWTFile == "" {
		env = append(env, envActionsTokenURL, envActionsToken)
	}
	return env
}
