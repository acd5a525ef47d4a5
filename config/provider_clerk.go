package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// DefaultClerkAPIURL is Clerk's Backend API, without the version path.
const DefaultClerkAPIURL = "https://api.clerk.com"

// Defaults of the Clerk provider blocks.
const (
	DefaultClerkTimeout       = 10 * time.Second
	DefaultClerkDashboardName = "rotor-{date}"
	DefaultClerkInstanceKey   = "CLERK_SECRET_KEY"
)

// ClerkProvider configures a Clerk instance secret key (CLERK_SECRET_KEY).
// Clerk has no API to create or delete one, so by default rotor asks the
// operator to do it in the Dashboard; Mint and Revoke hooks automate it
// where an organisation has a way.
type ClerkProvider struct {
	// APIURL is the Backend API without /v1; default https://api.clerk.com.
	// Plain http is accepted for loopback addresses only.
	APIURL string `yaml:"api_url"`
	// Timeout bounds each request attempt; default 10s.
	Timeout Duration `yaml:"timeout"`
	// Environment, when set, pins the Clerk instance: live (sk_live_ keys)
	// or test (sk_test_ keys). Without it the first key's environment is
	// kept: a key of the other one is never promoted over it.
	Environment string `yaml:"environment"`
	// DashboardName is the name rotor asks for a new key to be given in the
	// Dashboard, so the operator can find it again at revoke time.
	// {secret} and {date} (YYYY-MM-DD) are replaced; default rotor-{date}.
	DashboardName string `yaml:"dashboard_name"`
	// Mint, when set, is run instead of asking the operator: it creates a
	// key (named from ROTOR_DASHBOARD_NAME) and prints it, alone, on
	// stdout. Timeout defaults to 30s.
	Mint *Hook `yaml:"mint"`
	// Revoke, when set, is run instead of asking the operator: it reads a
	// JSON object describing the key (value included) on stdin and deletes
	// it at Clerk; rotor then checks that Clerk rejects the key. The
	// protocol of both hooks is in package provider/clerk.
	Revoke *Hook `yaml:"revoke"`
}

// ClerkMachineProvider configures a Clerk machine (M2M) secret key, which
// rotor rotates through the Backend API.
type ClerkMachineProvider struct {
	// APIURL is the Backend API without /v1; default https://api.clerk.com.
	APIURL string `yaml:"api_url"`
	// MachineID is the machine whose key is rotated (mch_…).
	MachineID string `yaml:"machine_id"`
	// InstanceKeyEnv names the environment variable holding the instance
	// secret key that authorises the rotate call; default CLERK_SECRET_KEY.
	// The key itself never goes in this file.
	InstanceKeyEnv string `yaml:"instance_key_env"`
	// Timeout bounds each request attempt; default 10s.
	Timeout Duration `yaml:"timeout"`
}

var (
	envName          = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	dashboardNameVar = regexp.MustCompile(`\{[^}]*\}`)
)

func (c *ClerkProvider) validate(v *validator, p path) {
	validateClerkAPIURL(v, p.with("api_url"), &c.APIURL)
	validateClerkTimeout(v, p.with("timeout"), &c.Timeout)
	switch c.Environment {
	case "", "live", "test":
	default:
		v.addf(p.with("environment"), "unknown environment %q (want live or test)", c.Environment)
	}
	if c.DashboardName == "" {
		c.DashboardName = DefaultClerkDashboardName
	}
	for _, m := range dashboardNameVar.FindAllString(c.DashboardName, -1) {
		if m != "{secret}" && m != "{date}" {
			v.addf(p.with("dashboard_name"), "unknown placeholder %s (want {secret} or {date})", m)
		}
	}
	if len(c.DashboardName) > 64 {
		v.addf(p.with("dashboard_name"), "must be at most 64 characters")
	}
	for name, h := range map[string]*Hook{"mint": c.Mint, "revoke": c.Revoke} {
		if h == nil {
			continue
		}
		if len(h.Command) == 0 || h.Command[0] == "" {
			v.addf(p.with(name, "command"), "hook needs a command")
		}
		if h.Timeout < 0 {
			v.addf(p.with(name, "timeout"), "must not be negative")
		}
	}
}

func (c *ClerkMachineProvider) validate(v *validator, p path) {
	validateClerkAPIURL(v, p.with("api_url"), &c.APIURL)
	validateClerkTimeout(v, p.with("timeout"), &c.Timeout)
	switch {
	case c.MachineID == "":
		v.addf(p.with("machine_id"), "machine_id is required")
	case !strings.HasPrefix(c.MachineID, "mch_") || strings.ContainsAny(c.MachineID, "/?#% "):
		v.addf(p.with("machine_id"), "%q is not a Clerk machine id (want mch_…)", c.MachineID)
	}
	switch {
	case c.InstanceKeyEnv == "":
		c.InstanceKeyEnv = DefaultClerkInstanceKey
	case strings.HasPrefix(c.InstanceKeyEnv, "sk_"):
		// Do not echo it: it looks like a key pasted where its variable's
		// name belongs.
		v.addf(p.with("instance_key_env"), "must name an environment variable (e.g. CLERK_SECRET_KEY), not hold the key itself; remove the key from this file and rotate it")
	case !envName.MatchString(c.InstanceKeyEnv):
		v.addf(p.with("instance_key_env"), "%q is not an environment variable name", c.InstanceKeyEnv)
	}
}

func validateClerkTimeout(v *validator, p path, d *Duration) {
	switch {
	case *d == 0:
		*d = Duration(DefaultClerkTimeout)
	case *d < 0:
		v.addf(p, "must not be negative")
	case time.Duration(*d) > 5*time.Minute:
		v.addf(p, "%s is longer than 5m", time.Duration(*d))
	}
}

// validateClerkAPIURL defaults, normalises (no trailing / or /v1) and checks
// an api_url: the secret key travels in a header, so plain http is only
// accepted to a loopback address.
func validateClerkAPIURL(v *validator, p path, s *string) {
	if *s == "" {
		*s = DefaultClerkAPIURL
		return
	}
	if msg := checkServiceURL(*s, "https://api.clerk.com", "the secret key"); msg != "" {
		v.addf(p, "%s", msg)
		return
	}
	*s = strings.TrimSuffix(strings.TrimRight(*s, "/"), "/v1")
}

// checkServiceURL returns why raw is not an acceptable service URL, or "".
// Plain http is accepted only to a loopback address, because what crosses
// it (named by carries) would travel in clear text.
func checkServiceURL(raw, example, carries string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Sprintf("invalid URL %q (want e.g. %s)", raw, example)
	}
	switch u.Scheme {
	case "https":
	case "http":
		host := u.Hostname()
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return "plain http is only allowed to a loopback address: " + carries + " would travel in clear text"
		}
	default:
		return fmt.Sprintf("invalid URL %q: scheme must be https", raw)
	}
	return ""
}
