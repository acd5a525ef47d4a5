package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
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

// maxDocumentSize bounds the discovery document and the key set.
const maxDocumentSize = 1 << 20

// maxSubjectLen bounds the audit subject built from a token's claims.
const maxSubjectLen = 512

// minRSABits is the smallest RSA key accepted from a key set.
const minRSABits = 2048

// signatureAlgorithms are the only JWS algorithms accepted: "none" and the
// HMAC algorithms, whose key would be public, are not among them.
var signatureAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

// OIDCRule maps the claims of a verified token to a role. Every non-empty
// field must match the token's claim of the same name exactly (Ref,
// JobWorkflowRef and Subject are [path.Match] patterns, in which '*' does
// not cross '/'); a claim the token lacks matches nothing. A rule must name
// the repository or its owner (or a sub pattern), since with GitHub any
// repository in the world can obtain a token for any audience.
type OIDCRule struct {
	// Repository is "owner/name".
	Repository string `yaml:"repository,omitempty" json:"repository,omitempty"`
	// RepositoryID is the repository's numeric id, which, unlike its
	// name, is never reused by another repository.
	RepositoryID string `yaml:"repository_id,omitempty" json:"repository_id,omitempty"`
	// RepositoryOwner is the owning user or organisation.
	RepositoryOwner string `yaml:"repository_owner,omitempty" json:"repository_owner,omitempty"`
	// RepositoryOwnerID is the owner's numeric id.
	RepositoryOwnerID string `yaml:"repository_owner_id,omitempty" json:"repository_owner_id,omitempty"`
	// Ref is a pattern for the git ref, e.g. "refs/heads/main" or
	// "refs/tags/v*".
	Ref string `yaml:"ref,omitempty" json:"ref,omitempty"`
	// Environment is the deployment environment of the job.
	Environment string `yaml:"environment,omitempty" json:"environment,omitempty"`
	// JobWorkflowRef is a pattern for the workflow file the job runs, e.g.
	// "org/infra/.github/workflows/rotate.yml@refs/heads/main".
	JobWorkflowRef string `yaml:"job_workflow_ref,omitempty" json:"job_workflow_ref,omitempty"`
	// Subject is a pattern for the sub claim, e.g.
	// "repo:org/app:environment:production".
	Subject string `yaml:"sub,omitempty" json:"sub,omitempty"`
	// Role is the role a matching token gets.
	Role Role `yaml:"role" json:"role"`
	// Secrets limits the role to these secrets (see [Principal.Secrets]).
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
}

// Validate checks r as it appears in the configuration.
func (r OIDCRule) Validate() error {
	if r.Repository == "" && r.RepositoryID == "" && r.RepositoryOwner == "" && r.RepositoryOwnerID == "" && strings.Trim(r.Subject, "*") == "" {
		return errors.New("oidc rule: name repository, repository_id, repository_owner, repository_owner_id or sub: any GitHub repository can obtain a token for any audience")
	}
	for name, p := range map[string]string{"ref": r.Ref, "job_workflow_ref": r.JobWorkflowRef, "sub": r.Subject} {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("oidc rule: %s pattern %q: %w", name, p, err)
		}
	}
	return validateGrant("oidc rule", r.Role, r.Secrets)
}

// match reports whether c satisfies every condition of r.
func (r OIDCRule) match(c *oidcClaims) bool {
	exact := func(want, have string) bool { return want == "" || want == have }
	glob := func(pattern, have string) bool {
		if pattern == "" {
			return true
		}
		ok, err := path.Match(pattern, have)
		return err == nil && ok && have != ""
	}
	return exact(r.Repository, string(c.Repository)) && exact(r.RepositoryID, string(c.RepositoryID)) &&
		exact(r.RepositoryOwner, string(c.RepositoryOwner)) && exact(r.RepositoryOwnerID, string(c.RepositoryOwnerID)) &&
		exact(r.Environment, string(c.Environment)) &&
		glob(r.Ref, string(c.Ref)) && glob(r.JobWorkflowRef, string(c.JobWorkflowRef)) && glob(r.Subject, c.Subject)
}

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
	keys jwksCache
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
	v.keys.v = v
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

// audience is the aud claim: one string or an array of strings.
type audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud: want a string or an array of strings")
	}
	*a = many
	return nil
}

// numericDate is a JWT time: seconds since the epoch, possibly fractional.
type numericDate struct{ time.Time }

// UnmarshalJSON accepts seconds since the epoch.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || f < 0 || f > 1e11 {
		return errors.New("want a number of seconds since 1970")
	}
	sec := int64(f)
	d.Time = time.Unix(sec, int64((f-float64(sec))*1e9)).UTC()
	return nil
}

// oidcClaims are the claims rotor reads from a token.
type oidcClaims struct {
	Issuer    string       `json:"iss"`
	Subject   string       `json:"sub"`
	Audience  audience     `json:"aud"`
	Expiry    *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`

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
	jws, err := jose.ParseSignedCompact(token, signatureAlgorithms)
	if err != nil {
		return Principal{}, failf("malformed token or algorithm other than RS256 and ES256")
	}
	var peek struct {
		Issuer string `json:"iss"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &peek) != nil {
		return Principal{}, failf("malformed claims")
	}
	if peek.Issuer != v.cfg.Issuer {
		return Principal{}, &authError{reason: fmt.Sprintf("oidc: issuer %q is not trusted", truncate(peek.Issuer, 200)), noMatch: true}
	}
	hdr := jws.Signatures[0].Header
	keys, err := v.keys.lookup(ctx, hdr.KeyID, hdr.Algorithm)
	if err != nil {
		return Principal{}, err
	}
	var payload []byte
	for _, k := range keys {
		if payload, err = jws.Verify(k.Key); err == nil {
			break
		}
	}
	if payload == nil {
		return Principal{}, failf("bad signature")
	}
	var c oidcClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Principal{}, failf("malformed claims")
	}
	if err := v.validate(&c); err != nil {
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
// verified.
func (v *OIDCVerifier) validate(c *oidcClaims) error {
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	switch {
	case c.Issuer != v.cfg.Issuer:
		return failf("issuer %q is not trusted", truncate(c.Issuer, 200))
	case !c.Audience.contains(v.cfg.Audience):
		return failf("audience is not %q", v.cfg.Audience)
	case c.Expiry == nil:
		return failf("token has no expiry")
	case now.After(c.Expiry.Add(skew)):
		return failf("token expired at %s", c.Expiry.Format(time.RFC3339))
	case c.NotBefore != nil && now.Add(skew).Before(c.NotBefore.Time):
		return failf("token not valid before %s", c.NotBefore.Format(time.RFC3339))
	case c.IssuedAt != nil && now.Add(skew).Before(c.IssuedAt.Time):
		return failf("token issued in the future (%s)", c.IssuedAt.Format(time.RFC3339))
	}
	return nil
}

func (a audience) contains(s string) bool {
	for _, x := range a {
		if x == s {
			return true
		}
	}
	return false
}

// jwksCache holds the issuer's signing keys. Keys are fetched on first
// use, again when they are older than CacheTTL, and when a token names a
// key the cache does not hold; never more often than MinRefreshInterval.
// Concurrent callers share one fetch.
type jwksCache struct {
	v *OIDCVerifier

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	fetchedAt   time.Time // of the keys held
	lastAttempt time.Time // of the last fetch, successful or not
	lastErr     error
	inflight    chan struct{} // closed when the running fetch ends
}

// lookup returns the keys that may have signed a token with this kid and
// alg, fetching the key set when needed.
func (c *jwksCache) lookup(ctx context.Context, kid, alg string) ([]jose.JSONWebKey, error) {
	now := c.v.cfg.Now()
	c.mu.Lock()
	stale := c.keys == nil || now.Sub(c.fetchedAt) >= c.v.cfg.CacheTTL
	c.mu.Unlock()
	if stale {
		// A failed refresh of stale keys is not fatal while we hold
		// some: the issuer being down must not lock CI out at once.
		if err := c.refresh(ctx); err != nil && !c.hasKeys() {
			return nil, failf("fetch signing keys: %v", err)
		}
	}
	if ks := c.find(kid, alg); len(ks) > 0 {
		return ks, nil
	}
	if err := c.refresh(ctx); err != nil && !errors.Is(err, errFetchedRecently) {
		return nil, failf("unknown signing key %q (refreshing keys: %v)", truncate(kid, 100), err)
	}
	if ks := c.find(kid, alg); len(ks) > 0 {
		return ks, nil
	}
	return nil, failf("unknown signing key %q", truncate(kid, 100))
}

func (c *jwksCache) hasKeys() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys) > 0
}

// find returns the held keys matching kid (every key when kid is empty)
// that can verify alg.
func (c *jwksCache) find(kid, alg string) []jose.JSONWebKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []jose.JSONWebKey
	for _, k := range c.keys {
		if (kid == "" || k.KeyID == kid) && keyFits(k, alg) {
			out = append(out, k)
		}
	}
	return out
}

// keyFits reports whether k is a public key of the kind alg needs.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS256) && pub.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && pub.Curve == elliptic.P256()
	}
	return false
}

// errFetchedRecently is what refresh returns when it declines to fetch
// again so soon after a successful fetch.
var errFetchedRecently = errors.New("key set fetched recently")

// refresh fetches the key set unless one was fetched less than
// MinRefreshInterval ago, in which case it returns that fetch's error.
// Callers arriving during a fetch wait for it.
func (c *jwksCache) refresh(ctx context.Context) error {
	c.mu.Lock()
	if ch := c.inflight; ch != nil {
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lastErr
	}
	now := c.v.cfg.Now()
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.v.cfg.MinRefreshInterval {
		err := c.lastErr
		c.mu.Unlock()
		if err == nil {
			err = errFetchedRecently
		}
		return err
	}
	ch := make(chan struct{})
	c.inflight = ch
	c.lastAttempt = now
	c.mu.Unlock()

	// The fetch serves every waiting caller, so one caller giving up must
	// not abort it.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultFetchTimeout)
	keys, err := c.v.fetchKeys(fctx)
	cancel()

	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.keys, c.fetchedAt = keys, now
	}
	c.lastErr = err
	c.inflight = nil
	close(ch)
	return err
}

// fetchKeys discovers the key set URL (unless configured) and fetches the
// usable signing keys from it.
func (v *OIDCVerifier) fetchKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	jwksURL := v.cfg.JWKSURL
	if jwksURL == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := v.getJSON(ctx, strings.TrimSuffix(v.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if doc.Issuer != v.cfg.Issuer {
			return nil, fmt.Errorf("discovery: document names issuer %q, not %q", truncate(doc.Issuer, 200), v.cfg.Issuer)
		}
		if err := checkURL("jwks_uri", doc.JWKSURI); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		jwksURL = doc.JWKSURI
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := v.getJSON(ctx, jwksURL, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		// Keys of kinds rotor cannot use are skipped, not fatal:
		// issuers may publish others alongside.
		if k.UnmarshalJSON(raw) != nil || !k.IsPublic() || k.Use != "" && k.Use != "sig" {
			continue
		}
		if keyFits(k, string(jose.RS256)) || keyFits(k, string(jose.ES256)) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set: no usable RS256 or ES256 signing keys")
	}
	return keys, nil
}

// getJSON fetches u and decodes its JSON body into dst.
func (v *OIDCVerifier) getJSON(ctx context.Context, u string, dst any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentSize+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(b) > maxDocumentSize {
		return fmt.Errorf("GET %s: document larger than %d bytes", u, maxDocumentSize)
	}
	if err := json.Unmarshal(b, dst); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

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
