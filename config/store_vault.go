package config

import (
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// Defaults of the vault store block.
const (
	DefaultVaultMount  = "secret"
	DefaultVaultPrefix = "rotor"
	// DefaultKubernetesJWTFile is where Kubernetes mounts a pod's
	// service-account token.
	DefaultKubernetesJWTFile = "/var/run/secrets/kubernetes.io/serviceaccount/token"
)

// Vault auth methods.
const (
	VaultAuthToken      = "token"
	VaultAuthAppRole    = "approle"
	VaultAuthJWT        = "jwt"
	VaultAuthKubernetes = "kubernetes"
)

// VaultStore configures the HashiCorp Vault KV v2 store.
type VaultStore struct {
	Address   string    `yaml:"address"`   // default $VAULT_ADDR
	Namespace string    `yaml:"namespace"` // Vault Enterprise namespace, default $VAULT_NAMESPACE
	Mount     string    `yaml:"mount"`     // KV v2 mount, default "secret"
	Prefix    string    `yaml:"prefix"`    // path prefix under the mount, default "rotor"
	Auth      VaultAuth `yaml:"auth"`
}

// VaultAuth configures how rotor logs in to Vault. Which fields apply
// depends on Method:
//
//   - token: TokenFile, else $VAULT_TOKEN.
//   - approle: RoleID, and the secret id from SecretIDFile, else
//     $VAULT_SECRET_ID.
//   - jwt: Role, and the JWT from JWTFile or, without one, a GitHub Actions
//     OIDC ID token requested for Audience.
//   - kubernetes: Role and the service-account token in JWTFile (default
//     [DefaultKubernetesJWTFile]).
//
// Secrets themselves (tokens, secret ids, JWTs) are never written in the
// config: only the files or environment variables that hold them.
type VaultAuth struct {
	Method string `yaml:"method"` // token (default), approle, jwt, kubernetes
	// Mount is the auth method's mount path; default: the method name.
	Mount        string `yaml:"mount"`
	Role         string `yaml:"role"`           // jwt, kubernetes
	TokenFile    string `yaml:"token_file"`     // token
	RoleID       string `yaml:"role_id"`        // approle
	SecretIDFile string `yaml:"secret_id_file"` // approle
	JWTFile      string `yaml:"jwt_file"`       // jwt, kubernetes
	Audience     string `yaml:"audience"`       // jwt from GitHub Actions
}

// vaultAuthFields lists the optional auth fields and the methods using them.
var vaultAuthFields = []struct {
	name    string
	get     func(*VaultAuth) string
	methods []string
}{
	{"mount", func(a *VaultAuth) string { return a.Mount }, []string{VaultAuthAppRole, VaultAuthJWT, VaultAuthKubernetes}},
	{"role", func(a *VaultAuth) string { return a.Role }, []string{VaultAuthJWT, VaultAuthKubernetes}},
	{"token_file", func(a *VaultAuth) string { return a.TokenFile }, []string{VaultAuthToken}},
	{"role_id", func(a *VaultAuth) string { return a.RoleID }, []string{VaultAuthAppRole}},
	{"secret_id_file", func(a *VaultAuth) string { return a.SecretIDFile }, []string{VaultAuthAppRole}},
	{"jwt_file", func(a *VaultAuth) string { return a.JWTFile }, []string{VaultAuthJWT, VaultAuthKubernetes}},
	{"audience", func(a *VaultAuth) string { return a.Audience }, []string{VaultAuthJWT}},
}

func (c *VaultStore) validate(v *validator, p path) {
	if c.Address != "" {
		u, err := url.Parse(c.Address)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.addf(p.with("address"), "invalid address %q: want a URL such as https://vault.example.com:8200", c.Address)
		}
	}
	c.Mount = strings.Trim(c.Mount, "/")
	if c.Mount == "" {
		c.Mount = DefaultVaultMount
	}
	if msg := vaultPathProblem(c.Mount); msg != "" {
		v.addf(p.with("mount"), "invalid mount %q: %s", c.Mount, msg)
	}
	c.Prefix = strings.Trim(c.Prefix, "/")
	if c.Prefix == "" {
		c.Prefix = DefaultVaultPrefix
	}
	if msg := vaultPathProblem(c.Prefix); msg != "" {
		v.addf(p.with("prefix"), "invalid prefix %q: %s", c.Prefix, msg)
	}
	c.Auth.validate(v, p.with("auth"))
}

func (a *VaultAuth) validate(v *validator, p path) {
	switch a.Method {
	case "":
		a.Method = VaultAuthToken
	case VaultAuthToken, VaultAuthAppRole, VaultAuthJWT, VaultAuthKubernetes:
	default:
		v.addf(p.with("method"), "unknown auth method %q (want token, approle, jwt or kubernetes)", a.Method)
		return
	}
	for _, f := range vaultAuthFields {
		if f.get(a) != "" && !slices.Contains(f.methods, a.Method) {
			v.addf(p.with(f.name), "%s is not used by auth method %s (only by %s)", f.name, a.Method, strings.Join(f.methods, ", "))
		}
	}
	if a.Method == VaultAuthToken {
		return
	}
	a.Mount = strings.Trim(a.Mount, "/")
	if a.Mount == "" {
		a.Mount = a.Method
	}
	if msg := vaultPathProblem(a.Mount); msg != "" {
		v.addf(p.with("mount"), "invalid auth mount %q: %s", a.Mount, msg)
	}
	switch a.Method {
	case VaultAuthAppRole:
		if a.RoleID == "" {
			v.addf(p.with("role_id"), "auth method approle needs a role_id")
		}
	case VaultAuthJWT:
		if a.Role == "" {
			v.addf(p.with("role"), "auth method jwt needs the Vault role to log in as")
		}
		if a.JWTFile != "" && a.Audience != "" {
			v.addf(p.with("audience"), "audience applies to GitHub Actions ID tokens only; drop it or jwt_file")
		}
	case VaultAuthKubernetes:
		if a.Role == "" {
			v.addf(p.with("role"), "auth method kubernetes needs the Vault role to log in as")
		}
		if a.JWTFile == "" {
			a.JWTFile = DefaultKubernetesJWTFile
		}
	}
}

// resolvePaths makes the credential files of the auth block absolute,
// relative to the config directory dir.
func (c *VaultStore) resolvePaths(dir string) {
	for _, f := range []*string{&c.Auth.TokenFile, &c.Auth.SecretIDFile, &c.Auth.JWTFile} {
		if *f != "" && !filepath.IsAbs(*f) {
			*f = filepath.Join(dir, *f)
		}
	}
}

// vaultPathProblem explains why s cannot be used as a mount or prefix in
// Vault API paths and in the ACL policies rotor prints, or returns "".
func vaultPathProblem(s string) string {
	if strings.ContainsAny(s, "*+\"\\ \t\n{}") {
		return `must not contain spaces, quotes, braces, '\', '*' or '+'`
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "must not contain empty, '.' or '..' path segments"
		}
	}
	return ""
}
