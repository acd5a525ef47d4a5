package authz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// GitHubIssuer is the issuer of GitHub Actions OIDC tokens.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// Defaults for [OIDCConfig].
const (
	// DefaultClockSkew is how far clocks may disagree when exp, nbf and
	// iat are checked.
	DefaultClockSkew = time.Minute
	// DefaultJWKSCacheTTL is how long a fetched key set is used before it
	// is fetched again.
	DefaultJWKSCacheTTL = time.Hour
	// DefaultMinRefreshInterval is the least time between two fetches of
	// the key set, however many tokens name unknown keys.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultFetchTimeout bounds one discovery and key set fetch.
	DefaultFetchTimeout = 10 * time.Second
)

// maxSubjectLen bounds the audit subject built from a token's claims.
const maxSubjectLen = 512

// signatureAlgorithms are the only JWS algorithms accepted: "none" and the
// HMAC algorithms, whose key would be public, are not among them.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// OIDCConfig configures an [OIDCVerifier].
type OIDCConfig struct {
	// Issuer is the trusted issuer; a token's iss must equal it exactly.
	// Default [GitHubIssuer]. It must be an https URL (http is accepted
	// for loopback hosts, for tests).
	Issuer string
	// Audience must be one of the token's aud values. Required: choose
	// one for rotor (e.g. "rotor") and request tokens for it in the
	// workflow.
	Audience string
	// JWKSURL, when set, is used instead of the jwks_uri of the issuer's
	// discovery document (<Issuer>/.well-known/openid-configuration).
	JWKSURL string
	// Rules map claims to roles; the first matching rule wins. A valid
	// token that no rule matches authenticates without a role, so every
	// request it makes is refused (and audited with its identity).
	Rules []OIDCRule
	// ClockSkew is the tolerance for exp, nbf and iat. Default
	// [DefaultClockSkew].
	ClockSkew time.Duration
	// CacheTTL is how long a fetched key set is trusted before it is
	// fetched again. Default [DefaultJWKSCacheTTL].
	CacheTTL time.Duration
	// MinRefreshInterval is the least time between two fetches, which a
	// token naming an unknown key triggers. Default
	// [DefaultMinRefreshInterval].
	MinRefreshInterval time.Duration
	// HTTPClient fetches the discovery document and key set. Default: a
	// client with a [DefaultFetchTimeout] timeout.
	HTTPClient *http.Client
	// Now is the clock. Default [time.Now].
	Now func() time.Time
}

// OIDCVerifier authenticates OIDC ID tokens (GitHub Actions tokens by
// default): it checks the signature against the issuer's published keys,
// the issuer, audience and validity period, and maps the claims to a role
// with the configured rules. Create one with [NewOIDCVerifier]; it is safe
// for concurrent use.
type OIDCVerifier struct {
	cfg  OIDCConfig
	keys *keySet
}

var _ Authenticator = (*OIDCVerifier)(nil)

// NewOIDCVerifier validates cfg and returns a verifier. It fetches nothing
// yet: the issuer's keys are fetched on first use, so an unreachable issuer
// does not stop rotor from starting.
func NewOIDCVerifier(cfg OIDCConfig) (*OIDCVerifier, error) {
	if cfg.Issuer == "" {
		cfg.Issuer = GitHubIssuer
	}
	if err := checkURL("issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	if cfg.JWKSURL != "" {
		if err := checkURL("jwks_url", cfg.JWKSURL); err != nil {
			return nil, err
		}
	}
	if cfg.Audience == "" {
		return nil, errors.New("oidc: audience is empty")
	}
	for i, r := range cfg.Rules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("oidc: rule %d: %w", i+1, err)
		}
	}
	if cfg.ClockSkew < 0 || cfg.CacheTTL < 0 || cfg.MinRefreshInterval < 0 {
		return nil, errors.New("oidc: durations must not be negative")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultJWKSCacheTTL
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: DefaultFetchTimeout}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Rules = append([]OIDCRule(nil), cfg.Rules...)
	v := &OIDCVerifier{cfg: cfg}
	v.keys = newKeySet(&v.cfg)
	return v, nil
}

// checkURL accepts https URLs, and http URLs to loopback hosts.
func checkURL(what, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("oidc: %s %q is not an absolute URL", what, raw)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
		return nil
	}
	return fmt.Errorf("oidc: %s %q: want an https URL (http only to loopback)", what, raw)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// authError is an authentication failure. Its message is the reason only,
// never the token.
type authError struct {
	reason  string
	noMatch bool
}

// Error returns the reason, never the credential.
func (e *authError) Error() string { return "unauthenticated: " + e.reason }

// Is makes the error match ErrUnauthenticated, and ErrNoMatch when the
// credential was not recognised.
func (e *authError) Is(target error) bool {
	return target == ErrUnauthenticated || e.noMatch && target == ErrNoMatch
}

func failf(format string, args ...any) error {
	return &authError{reason: "oidc: " + fmt.Sprintf(format, args...)}
}

// flexString is a claim GitHub sends as a string that other issuers may
// send as a number.
type flexString string

// UnmarshalJSON accepts a JSON string or number.
func (s *flexString) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		*s = flexString(str)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("want a string or a number")
	}
	*s = flexString(n.String())
	return nil
}

// oidcClaims are the claims rotor's rules and audit subject read from a
// token; the registered claims (iss, aud, exp, nbf, iat) are go-jose's
// [jwt.Claims], checked by [OIDCVerifier.validate].
type oidcClaims struct {
	Subject string `json:"sub"`

	Repository        flexString `json:"repository"`
	RepositoryID      flexString `json:"repository_id"`
	RepositoryOwner   flexString `json:"repository_owner"`
	RepositoryOwnerID flexString `json:"repository_owner_id"`
	Ref               flexString `json:"ref"`
	Environment       flexString `json:"environment"`
	Workflow          flexString `json:"workflow"`
	JobWorkflowRef    flexString `json:"job_workflow_ref"`
	RunID             flexString `json:"run_id"`
}

// auditSubject is the identity the audit log records for a token.
func (c *oidcClaims) auditSubject() string {
	var s string
	if c.Repository != "" {
		wf := string(c.Workflow)
		if wf == "" {
			wf = string(c.JobWorkflowRef)
		}
		s = "ci:github:" + string(c.Repository) + ":" + wf
		if c.RunID != "" {
			s += "#" + string(c.RunID)
		}
	} else {
		s = "oidc:" + c.Subject
	}
	return truncate(s, maxSubjectLen)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// looksLikeJWT reports whether token has the shape of a JWS compact
// serialization whose header names an algorithm. Other tokens are left to
// other authenticators.
func looksLikeJWT(token string) bool {
	head, _, ok := strings.Cut(token, ".")
	if !ok || strings.Count(token, ".") != 2 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(b, &h) == nil && h.Alg != nil
}

// Authenticate verifies token and maps it to a principal. A token that is
// not a JWT, or whose (unverified) issuer is not this verifier's, fails
// with an error wrapping [ErrNoMatch], so a [Chain] of verifiers for
// several issuers works. A verified token that no rule matches returns a
// principal without a role.
func (v *OIDCVerifier) Authenticate(ctx context.Context, token string) (Principal, error) {
	if len(token) > maxTokenLen || !looksLikeJWT(token) {
		return Principal{}, &authError{reason: "oidc: not a JWT", noMatch: true}
	}
	tok, err := jwt.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		return Principal{}, failf("malformed token or algorithm other than RS256 and ES256")
	}
	var peek struct {
		Issuer string `json:"iss"`
	}
	if tok.UnsafeClaimsWithoutVerification(&peek) != nil {
		return Principal{}, failf("malformed claims")
	}
	if peek.Issuer != v.cfg.Issuer {
		return Principal{}, &authError{reason: fmt.Sprintf("oidc: issuer %q is not trusted", truncate(peek.Issuer, 200)), noMatch: true}
	}
	hdr := tok.Headers[0]
	payload, err := v.keys.verify(ctx, token, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return Principal{}, err
	}
	var std jwt.Claims
	var c oidcClaims
	if json.Unmarshal(payload, &std) != nil || json.Unmarshal(payload, &c) != nil {
		return Principal{}, failf("malformed claims")
	}
	if err := v.validate(&std); err != nil {
		return Principal{}, err
	}
	p := Principal{Subject: c.auditSubject()}
	for _, r := range v.cfg.Rules {
		if r.match(&c) {
			p.Role = r.Role
			p.Secrets = append([]string(nil), r.Secrets...)
			break
		}
	}
	return p, nil
}

// validate checks the registered claims of a token whose signature
// verified, with go-jose's validation, and requires an expiry, which
// go-jose leaves optional.
func (v *OIDCVerifier) validate(c *jwt.Claims) error {
	want := jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: v.cfg.Now()}
	err := c.ValidateWithLeeway(want, v.cfg.ClockSkew)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return failf("issuer %q is not trusted", truncate(c.Issuer, 200))
	case errors.Is(err, jwt.ErrInvalidAudience):
		return failf("audience is not %q", v.cfg.Audience)
	case errors.Is(err, jwt.ErrExpired):
		return failf("token expired at %s", rfc3339(c.Expiry))
	case errors.Is(err, jwt.ErrNotValidYet):
		return failf("token not valid before %s", rfc3339(c.NotBefore))
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return failf("token issued in the future (%s)", rfc3339(c.IssuedAt))
	case err != nil:
		return failf("claims: %v", err)
	case c.Expiry == nil:
		return failf("token has no expiry")
	}
	return nil
}

func rfc3339(d *jwt.NumericDate) string { return d.Time().UTC().Format(time.RFC3339) }

// UnverifiedSubject returns the audit subject the claims of token name,
// without verifying anything, or "" when token is not a JWT. It is for the
// audit record of a refused credential (an expired CI token, say), where
// it must be labelled as a claim: anybody can write any claims.
func UnverifiedSubject(token string) string {
	if len(token) > maxTokenLen || !looksLikeJWT(token) {
		return ""
	}
	parts := strings.Split(token, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c oidcClaims
	if json.Unmarshal(b, &c) != nil || c.Repository == "" && c.Subject == "" {
		return ""
	}
	return c.auditSubject()
}
