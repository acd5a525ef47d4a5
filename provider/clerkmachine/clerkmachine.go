// Package clerkmachine rotates a Clerk machine (M2M) secret key through the
// Backend API, with no operator involved.
//
// Mint calls POST /v1/machines/{machine_id}/secret_key/rotate, authorised by
// the instance secret key (read from the environment variable
// [Options].InstanceKeyEnv names), with previous_token_ttl set to the secret's grace period. Clerk
// caps previous_token_ttl at 8 hours: a longer grace is cut to 8 hours, and
// [GraceWarning] says so at config time. Clerk keeps one previous key, so a
// second rotation ends the first one's grace at once; Mint therefore never
// rotates twice for one rotation (see [Provider.Mint]).
//
// A rotate that Clerk performed but rotor never saved is found again by
// [Provider.Recover], which reads the machine's key (GET
// /v1/machines/{machine_id}/secret_key): the engine saves an intent before
// every Mint, and a run that finds one without its key asks Recover instead
// of rotating a second time, which would end the grace of the key
// consumers still use and lose the new one.
//
// Test lists the machine's M2M tokens (GET /v1/m2m_tokens?subject=…) with
// the machine key itself: a read-only call that only a valid key of that
// machine may make. Revoke does nothing: the previous key expires at Clerk
// on its own when previous_token_ttl has passed, and Clerk has no call to
// end it sooner short of rotating again, which would also replace the
// current key. Every key Mint returns says so
// ([provider.MetaReplacedKeyTTL]), so that rotor records when the replaced
// key stops working and, after a rollback to it, rotates before then.
package clerkmachine

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/clerkapi"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// MaxPreviousTokenTTL is the longest Clerk keeps a rotated-out machine key
// valid (previous_token_ttl of 28800 seconds).
const MaxPreviousTokenTTL = 8 * time.Hour

// Meta entries Mint records with a new key.
const (
	MetaMachineID        = "machine_id"
	MetaPreviousTokenTTL = "previous_token_ttl" // seconds granted to the key replaced
	MetaRecovered        = "recovered"          // "true": adopted from Clerk, see Mint
)

// GraceWarning returns a warning to print at config time when grace is
// longer than Clerk keeps a previous machine key, or "" when it is not.
func GraceWarning(grace time.Duration) string {
	if grace <= MaxPreviousTokenTTL {
		return ""
	}
	return fmt.Sprintf("clerk-machine: grace %s exceeds Clerk's maximum previous_token_ttl of 8h; the previous key will stop working after 8h", formatDuration(grace))
}

func formatDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// previousTokenTTL converts a grace period to previous_token_ttl seconds:
// rounded up, so the old key lives at least as long as asked, and capped at
// Clerk's maximum.
func previousTokenTTL(grace time.Duration) int {
	if grace <= 0 {
		return 0
	}
	grace = min(grace, MaxPreviousTokenTTL)
	return int((grace + time.Second - 1) / time.Second)
}

// Defaults of [Options].
const (
	DefaultAPIURL         = clerkapi.DefaultURL
	DefaultTimeout        = clerkapi.DefaultTimeout
	DefaultInstanceKeyEnv = "CLERK_SECRET_KEY"
)

// Options configures the provider of one machine's secret key.
type Options struct {
	// APIURL is the Backend API without /v1; default [DefaultAPIURL].
	// Plain http is accepted for loopback addresses only.
	APIURL string
	// MachineID is the machine whose key is rotated (mch_…).
	MachineID string
	// InstanceKeyEnv names the environment variable holding the instance
	// secret key that authorises the rotate call; default
	// [DefaultInstanceKeyEnv]. The key itself is never an option.
	InstanceKeyEnv string
	// Timeout bounds each request attempt, at most 5m; default
	// [DefaultTimeout].
	Timeout time.Duration
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// WithDefaults returns o with its empty fields set to their defaults and
// APIURL normalised (no trailing / or /v1).
func (o Options) WithDefaults() Options {
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	o.APIURL = clerkapi.NormalizeURL(o.APIURL)
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.InstanceKeyEnv == "" {
		o.InstanceKeyEnv = DefaultInstanceKeyEnv
	}
	return o
}

// ConsumedEnv lists the environment variable holding the instance key
// (InstanceKeyEnv), which rotor keeps from the processes it starts (hooks,
// `rotor run` children) unless told to pass it.
func (o Options) ConsumedEnv() []string { return []string{o.WithDefaults().InstanceKeyEnv} }

// Validate reports every problem of o (after defaults) as a [field.List].
// It never quotes a key pasted where a variable name belongs.
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs field.List
	errs.Add(field.NewPath("api_url"), clerkapi.CheckURL(o.APIURL))
	errs.Add(field.NewPath("timeout"), clerkapi.CheckTimeout(o.Timeout))
	switch {
	case o.MachineID == "":
		errs.Addf(field.NewPath("machine_id"), "machine_id is required")
	case !strings.HasPrefix(o.MachineID, "mch_") || strings.ContainsAny(o.MachineID, "/?#% "):
		errs.Addf(field.NewPath("machine_id"), "%q is not a Clerk machine id (want mch_…)", o.MachineID)
	}
	switch {
	case strings.HasPrefix(o.InstanceKeyEnv, "sk_"):
		// Do not echo it: it looks like a key pasted where its variable's
		// name belongs.
		errs.Addf(field.NewPath("instance_key_env"), "must name an environment variable (e.g. CLERK_SECRET_KEY), not hold the key itself; remove the key from this file and rotate it")
	case !envName.MatchString(o.InstanceKeyEnv):
		errs.Addf(field.NewPath("instance_key_env"), "%q is not an environment variable name", o.InstanceKeyEnv)
	}
	return errs.Err()
}

// Provider rotates one machine's secret key.
type Provider struct {
	secret    string
	machineID string
	keyEnv    string
	lookupEnv func(string) (string, bool)
	api       *clerkapi.Client
}

var (
	_ provider.Provider  = (*Provider)(nil)
	_ provider.Recoverer = (*Provider)(nil)
)

type options struct {
	api       clerkapi.Config
	lookupEnv func(string) (string, bool)
}

// Option adjusts how a Provider talks to Clerk; the defaults suit
// production. What the operator configures is in [Options].
type Option func(*options)

// WithHTTPClient sets the HTTP client for Backend API calls.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.api.HTTPClient = c } }

// WithRetryWait replaces the wait between retries (tests pass one that
// returns at once).
func WithRetryWait(w clerkapi.WaitFunc) Option { return func(o *options) { o.api.Wait = w } }

// WithMaxAttempts bounds the attempts of one Backend API call (default 4).
func WithMaxAttempts(n int) Option { return func(o *options) { o.api.MaxAttempts = n } }

// WithLookupEnv replaces os.LookupEnv for reading the instance key.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// New returns the provider of the secret called secret. Empty fields of
// cfg take their defaults. The instance key is read when Mint needs it,
// not here, so commands that never rotate do not need it.
func New(secret string, cfg Options, opts ...Option) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clerk-machine: %w", err)
	}
	o := options{api: clerkapi.Config{URL: cfg.APIURL, Timeout: cfg.Timeout}, lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	api, err := clerkapi.New(o.api)
	if err != nil {
		return nil, fmt.Errorf("clerk-machine: %w", err)
	}
	return &Provider{secret: secret, machineID: cfg.MachineID, keyEnv: cfg.InstanceKeyEnv, lookupEnv: o.lookupEnv, api: api}, nil
}

func (p *Provider) instanceKey() (string, error) {
	v, ok := p.lookupEnv(p.keyEnv)
	switch {
	case !ok || v == "":
		return "", fmt.Errorf("clerk-machine: environment variable %s (instance_key_env) is not set; rotating machine %s needs the instance secret key", p.keyEnv, p.machineID)
	case !strings.HasPrefix(v, "sk_live_") && !strings.HasPrefix(v, "sk_test_"):
		return "", fmt.Errorf("clerk-machine: environment variable %s does not hold a Clerk instance secret key (sk_live_… or sk_test_…)", p.keyEnv)
	}
	return v, nil
}

type machineSecretKey struct {
	Object string `json:"object"`
	Secret string `json:"secret"`
}

// Mint rotates the machine's key with previous_token_ttl = req.Grace
// (capped at 8h) and returns the new key.
//
// A rotation Clerk performed but rotor never recorded (rotor stopped
// between the call and saving the pending key) must not be repeated: a
// second rotate would end the grace of the key consumers still use. So when
// req.Current is set, Mint first reads the machine's key from Clerk; if it
// is no longer req.Current, Clerk already rotated and Mint returns that key
// (meta recovered=true) instead of rotating again. The same holds after a
// rollback: rotor's current key is then Clerk's previous one, valid until
// its previous_token_ttl runs out, and rotating again would end it at once;
// Clerk's current key is the only one that lasts.
func (p *Provider) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	key, err := p.instanceKey()
	if err != nil {
		return provider.Credential{}, err
	}
	base := "/machines/" + url.PathEscape(p.machineID) + "/secret_key"
	meta := map[string]string{MetaMachineID: p.machineID}
	if req.Current != nil && req.Current.Value != "" {
		cur, err := p.readKey(ctx, key)
		if err != nil {
			return provider.Credential{}, fmt.Errorf("clerk-machine: read the key of machine %s before rotating: %w", p.machineID, err)
		}
		if cur != "" && cur != req.Current.Value {
			meta[MetaRecovered] = "true"
			// A lost rotate asked for this request's ttl; after a
			// rollback the current key's earlier deadline stands.
			meta[provider.MetaReplacedKeyTTL] = strconv.Itoa(previousTokenTTL(req.Grace))
			return provider.Credential{Value: cur, Meta: meta}, nil
		}
	}
	ttl := previousTokenTTL(req.Grace)
	var out machineSecretKey
	call := clerkapi.Call{
		Method: http.MethodPost, Path: base + "/rotate", Key: key,
		Body: map[string]int{"previous_token_ttl": ttl},
		// Not idempotent: see above. Only answers the server cannot have
		// acted on (429, a refused connection) are retried.
		Idempotent: false,
	}
	if err := p.api.Do(ctx, call, &out); err != nil {
		return provider.Credential{}, fmt.Errorf("clerk-machine: rotate the key of machine %s: %w", p.machineID, p.describe(err))
	}
	if out.Secret == "" {
		return provider.Credential{}, fmt.Errorf("clerk-machine: rotate the key of machine %s: the answer holds no secret; the machine may have been rotated: the next run adopts its key", p.machineID)
	}
	meta[MetaPreviousTokenTTL] = strconv.Itoa(ttl)
	meta[provider.MetaReplacedKeyTTL] = strconv.Itoa(ttl)
	return provider.Credential{Value: out.Secret, Meta: meta}, nil
}

// Recover returns the key an interrupted Mint left at Clerk (meta
// recovered=true): the machine's key, when it is no longer req.Current's.
// Clerk keeps one current key per machine and only a rotate changes it, so
// a key that is still req.Current's means the rotate never happened, and
// Recover answers [provider.ErrNotMinted]. Without a current key (first
// issue) the machine's key is returned whatever it is: it works, and a key
// the lost rotate replaced expires at Clerk on its own. Recover only reads.
func (p *Provider) Recover(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	key, err := p.instanceKey()
	if err != nil {
		return provider.Credential{}, err
	}
	cur, err := p.readKey(ctx, key)
	if err != nil {
		return provider.Credential{}, fmt.Errorf("clerk-machine: recover request %s: read the key of machine %s: %w", req.RequestID, p.machineID, err)
	}
	switch {
	case cur == "":
		return provider.Credential{}, fmt.Errorf("clerk-machine: recover request %s: Clerk answered no key for machine %s", req.RequestID, p.machineID)
	case req.Current != nil && cur == req.Current.Value:
		return provider.Credential{}, fmt.Errorf("clerk-machine: machine %s still has the current key: %w", p.machineID, provider.ErrNotMinted)
	}
	return provider.Credential{Value: cur, Meta: map[string]string{MetaMachineID: p.machineID, MetaRecovered: "true",
		provider.MetaReplacedKeyTTL: strconv.Itoa(previousTokenTTL(req.Grace))}}, nil
}

// readKey returns the machine's secret key as Clerk holds it now.
func (p *Provider) readKey(ctx context.Context, instanceKey string) (string, error) {
	var cur machineSecretKey
	path := "/machines/" + url.PathEscape(p.machineID) + "/secret_key"
	if err := p.api.Do(ctx, clerkapi.Call{Method: http.MethodGet, Path: path, Key: instanceKey, Idempotent: true}, &cur); err != nil {
		return "", p.describe(err)
	}
	return cur.Secret, nil
}

// describe adds a hint to errors of calls made with the instance key.
func (p *Provider) describe(err error) error {
	switch clerkapi.StatusOf(err) {
	case http.StatusUnauthorized:
		return fmt.Errorf("%w (is %s the secret key of the machine's instance?)", err, p.keyEnv)
	case http.StatusNotFound:
		return fmt.Errorf("%w (no machine %s in this instance?)", err, p.machineID)
	}
	return err
}

// Test proves value is a valid secret key of this machine by listing the
// machine's M2M tokens with it, a read-only call. 401 and 403 wrap
// [provider.ErrRejected].
func (p *Provider) Test(ctx context.Context, value string) error {
	switch {
	case value == "":
		return fmt.Errorf("clerk-machine: empty key: %w", provider.ErrRejected)
	case strings.HasPrefix(value, "sk_live_"), strings.HasPrefix(value, "sk_test_"):
		// An instance key may list any machine's tokens: it would pass.
		return fmt.Errorf("clerk-machine: this is an instance secret key (sk_…), not a machine secret key: %w", provider.ErrRejected)
	case strings.TrimSpace(value) != value:
		return fmt.Errorf("clerk-machine: the key has leading or trailing whitespace: %w", provider.ErrRejected)
	}
	q := url.Values{"subject": {p.machineID}, "limit": {"1"}}
	err := p.api.Do(ctx, clerkapi.Call{Method: http.MethodGet, Path: "/m2m_tokens", Query: q, Key: value, Idempotent: true}, nil)
	switch clerkapi.StatusOf(err) {
	case 0:
		if err != nil {
			return fmt.Errorf("clerk-machine: test key of machine %s: %w", p.machineID, err)
		}
		return nil
	case http.StatusUnauthorized:
		return fmt.Errorf("clerk-machine: test key of machine %s: Clerk does not accept it: %w: %w", p.machineID, provider.ErrRejected, err)
	case http.StatusForbidden:
		return fmt.Errorf("clerk-machine: test key of machine %s: the key belongs to another machine: %w: %w", p.machineID, provider.ErrRejected, err)
	}
	return fmt.Errorf("clerk-machine: test key of machine %s: %w", p.machineID, err)
}

// Revoke does nothing and returns nil: Clerk ends a rotated-out machine key
// by itself once previous_token_ttl has passed (at most 8h after the
// rotation), and has no call to end it sooner.
func (p *Provider) Revoke(context.Context, store.Key) error { return nil }
