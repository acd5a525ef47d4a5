package config

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/serviceurl"
)

// DefaultListen is the API's default address: loopback only, so a fresh
// config never exposes the API by accident.
const DefaultListen = "127.0.0.1:8700"

// ServerConfig configures the API served by `rotor serve` and `rotor daemon`.
type ServerConfig struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:8700
	TLS    struct {
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
	// AllowPlaintext serves plain HTTP on a non-loopback address and lets
	// values (stage, watch) cross it: only behind a TLS-terminating proxy.
	AllowPlaintext bool     `yaml:"allow_plaintext"`
	WatchInterval  Duration `yaml:"watch_interval"` // default 1s
	// MetricsOpen serves /metrics without authentication.
	MetricsOpen bool `yaml:"metrics_open"`
	// Tokens are bearer tokens, stored as sha256:<hex> hashes
	// (`rotor token new` prints a token and its hash).
	Tokens []authz.Token `yaml:"tokens"`
	// OIDC accepts GitHub Actions (or another issuer's) ID tokens.
	OIDC []OIDCIssuer `yaml:"oidc"`
	// Notify names the rotor serve (or daemon) instances that this rotor,
	// CLI or daemon, tells about every change it makes to a watched key
	// set, so that their watch streams push it at once.
	Notify NotifyConfig `yaml:"notify"`
}

// Defaults of [NotifyConfig].
const (
	DefaultNotifyTokenEnv = "ROTOR_NOTIFY_TOKEN"
	DefaultNotifyTimeout  = 5 * time.Second
)

// NotifyConfig says where to send POST /v1/secrets/{name}/notify.
type NotifyConfig struct {
	// URLs are the base URLs of the servers, e.g.
	// https://rotor.internal:8700: https, or http to loopback only (the
	// request carries a token).
	URLs []string `yaml:"urls"`
	// TokenEnv names the environment variable holding an API token of
	// role ci or admin; default ROTOR_NOTIFY_TOKEN.
	TokenEnv string `yaml:"token_env"`
	// Timeout bounds each request; default 5s. A notification that fails
	// only delays the push to the server's next poll.
	Timeout Duration `yaml:"timeout"`
}

// OIDCIssuer is one accepted OIDC issuer and its claim → role rules.
type OIDCIssuer struct {
	Issuer    string           `yaml:"issuer"` // default GitHub Actions
	Audience  string           `yaml:"audience"`
	JWKSURL   string           `yaml:"jwks_url"`
	ClockSkew Duration         `yaml:"clock_skew"`
	Rules     []authz.OIDCRule `yaml:"rules"`
}

func (c *ServerConfig) validate(v *validator, p field.Path) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.addf(p.Child("listen"), "invalid listen address %q: want host:port", c.Listen)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		v.addf(p.Child("tls"), "set both cert_file and key_file, or neither")
	}
	if c.WatchInterval < 0 {
		v.addf(p.Child("watch_interval"), "must not be negative")
	}
	c.Notify.validate(v, p.Child("notify"))
	names := map[string]bool{}
	for i, t := range c.Tokens {
		if err := t.Validate(); err != nil {
			v.addf(p.Child("tokens", i), "%v", err)
		}
		if names[t.Name] {
			v.addf(p.Child("tokens", i, "name"), "token %q is defined twice", t.Name)
		}
		names[t.Name] = true
	}
	for i := range c.OIDC {
		o := &c.OIDC[i]
		if o.Issuer == "" {
			o.Issuer = authz.GitHubIssuer
		}
		if o.Audience == "" {
			v.addf(p.Child("oidc", i, "audience"), "audience is required (the value your workflow requests the ID token for)")
		}
		if len(o.Rules) == 0 {
			v.addf(p.Child("oidc", i, "rules"), "at least one rule mapping claims to a role is required")
		}
		for j, r := range o.Rules {
			if err := r.Validate(); err != nil {
				v.addf(p.Child("oidc", i, "rules", j), "%v", err)
			}
		}
	}
}

// String describes where the API listens, for logs.
func (c *ServerConfig) String() string {
	scheme := "http"
	if c.TLS.CertFile != "" {
		scheme = "https"
	}
	return fmt.Sprintf("%s://%s", scheme, c.Listen)
}

func (n *NotifyConfig) validate(v *validator, p field.Path) {
	if n.TokenEnv == "" {
		n.TokenEnv = DefaultNotifyTokenEnv
	}
	if n.Timeout == 0 {
		n.Timeout = Duration(DefaultNotifyTimeout)
	}
	if !envName.MatchString(n.TokenEnv) {
		v.addf(p.Child("token_env"), "%q is not an environment variable name", n.TokenEnv)
	}
	if n.Timeout < 0 {
		v.addf(p.Child("timeout"), "must not be negative")
	}
	for i, raw := range n.URLs {
		// serviceurl's messages quote the URL: keep a password out of them.
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			v.addf(p.Child("urls", i), "%q: give the server's base URL, without credentials", u.Redacted())
			continue
		}
		if err := serviceurl.Check(raw, "https://rotor.internal:8700", "the notify token"); err != nil {
			v.addf(p.Child("urls", i), "%v", err)
		}
	}
}
