// Package clerk rotates a Clerk instance secret key (CLERK_SECRET_KEY,
// sk_live_… or sk_test_…).
//
// Clerk lets an instance hold several active secret keys, which is what
// makes a zero-downtime rotation possible. The [Provider] has two modes.
//
// # Platform mode
//
// With [Options].Platform set, the whole cycle is automatic through Clerk's
// Platform API (a workspace-level API, in beta, authenticated by a Platform
// API access token read from the environment variable [Platform].TokenEnv):
//
//   - Mint calls rotate_secret_keys for the configured instance with
//     delay_old_secrets_expiration_hours = the secret's grace period rounded
//     up to whole hours: Clerk creates a new key, returns it in that answer
//     only, and deletes the old keys itself when the delay is over.
//   - Test is the same as in manual mode (GET /v1/jwks with the key).
//   - Revoke confirms that Clerk deleted the key (401 from /v1/jwks);
//     while Clerk still accepts it, it fails without asking the operator for
//     anything, and a later run confirms.
//
// The rotate call is not idempotent and its answer is the only copy of the
// new key, so it is never sent twice for one rotation and never retried
// after a failure Clerk may have acted on (see package
// [github.com/rotor-dev/rotor/internal/clerkapi]). Mint wraps
// [provider.ErrNotMinted] only when Clerk cannot have acted (no token, a
// 4xx answer, a refused connection); after any other failure, or a run
// that died between the call and saving the key, the engine asks
// [PlatformProvider.Recover] ([provider.Recoverer]; [Provider.ForEngine]
// returns it), which reads the instance's
// secret key (GET /v1/platform/applications/{id}?include_secret_keys=true)
// and takes it (meta recovered=true) when it is neither current nor
// previous, instead of rotating again.
//
// # Manual mode
//
// Without Platform API access, creating and deleting a key is a Dashboard
// action with no public Backend API, so the [Provider] works with the
// operator:
//
//   - Mint returns a [*provider.ActionRequiredError] saying which key to
//     create in the Dashboard and how to stage it (`rotor stage`), unless a
//     mint hook is configured. The engine only calls Mint when nothing is
//     staged.
//   - Test calls GET /v1/jwks with the key: 200 means Clerk accepts it,
//     401 clerk_key_invalid means it does not ([provider.ErrRejected]).
//   - Revoke is two-phase. While Clerk still accepts the key it returns an
//     ActionRequiredError naming the key to delete in the Dashboard; once
//     Clerk answers 401 it returns nil, so a rerun (`rotor revoke <name>`)
//     confirms the deletion and clears the key. A revoke hook,
//     when configured, deletes the key and the same check confirms it.
//   - CheckPromote ([provider.PromoteChecker]) refuses a test key over a
//     live key and the reverse: they belong to different instances.
//
// # Hooks
//
// A hook is a command run without a shell (see [exec.Command]). Both read
// one JSON object on stdin:
//
//	{"version":1,"action":"mint","secret":"…","dashboard_name":"rotor-2025-06-01","environment":"live"}
//	{"version":1,"action":"revoke","secret":"…","key_id":"…","dashboard_name":"…","value":"sk_live_…"}
//
// and get ROTOR_SECRET, ROTOR_ACTION, ROTOR_DASHBOARD_NAME (and
// ROTOR_KEY_ID for revoke, ROTOR_CLERK_ENVIRONMENT for mint) in their
// environment; a key is only ever on stdin. The mint hook prints the new key,
// alone, on stdout. The revoke hook exits 0 once it has deleted the key;
// rotor then checks that Clerk rejects it. Anything shaped like a Clerk key
// is scrubbed from a hook's stderr before it is quoted in an error.
//
// Errors carry rotor's key id and the key's Dashboard name, never any part
// of a key.
package clerk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/clerkapi"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/exec"
	"github.com/rotor-dev/rotor/store"
)

// MetaDashboardName is the [store.Key.Meta] entry holding the name a key
// was given in the Clerk Dashboard; Revoke uses it to say which key to
// delete. Mint sets it; `rotor stage` may set it from the operator.
const MetaDashboardName = "dashboard_name"

// Meta entries Mint records with a key it got from the Platform API.
const (
	MetaInstanceID = "clerk_instance_id"
	// MetaDelayHours is the delay_old_secrets_expiration_hours the rotate
	// call that created the key gave the key it replaced.
	MetaDelayHours = "delay_old_secrets_expiration_hours"
	// MetaRecovered is "true" on a key Mint found at Clerk after a rotate
	// whose answer rotor never saved, instead of rotating again.
	MetaRecovered = "recovered"
)

// keyPattern matches anything shaped like a Clerk key.
var keyPattern = regexp.MustCompile(`[sp]k_(live|test)_[A-Za-z0-9_-]+`)

// ErrEnvironmentMismatch means a key belongs to the other Clerk environment
// (a test key where a live one is expected, or the reverse).
var ErrEnvironmentMismatch = errors.New("keys of different Clerk environments")

// The two environments of Clerk instances and their key prefixes.
const (
	EnvLive = "live"
	EnvTest = "test"
)

// Defaults of [Options].
const (
	DefaultAPIURL        = clerkapi.DefaultURL
	DefaultTimeout       = clerkapi.DefaultTimeout
	DefaultDashboardName = "rotor-{date}"
	DefaultTokenEnv      = "CLERK_PLATFORM_API_TOKEN"
)

// The environment types of the Platform API, and the environments of the
// keys of their instances.
const (
	InstanceDevelopment = "development" // sk_test_ keys
	InstanceProduction  = "production"  // sk_live_ keys
)

// maxDashboardName is the longest Dashboard name rotor asks for.
const maxDashboardName = 64

// Options configures the provider of one Clerk instance secret key. Clerk
// has no API to create or delete one, so by default rotor asks the
// operator to do it in the Dashboard; the Mint and Revoke hooks automate
// it where an organisation has a way.
type Options struct {
	// APIURL is the Backend API without /v1; default [DefaultAPIURL].
	// Plain http is accepted for loopback addresses only.
	APIURL string
	// Timeout bounds each request attempt, at most 5m; default
	// [DefaultTimeout].
	Timeout time.Duration
	// Environment, when set, pins the Clerk instance: EnvLive (sk_live_
	// keys) or EnvTest (sk_test_ keys). Without it the first key's
	// environment is kept: a key of the other one is never promoted over it.
	Environment string
	// DashboardName is the name rotor asks for a new key to be given in
	// the Dashboard, so the operator can find it again at revoke time.
	// {secret} and {date} (YYYY-MM-DD) are replaced; at most 64
	// characters; default [DefaultDashboardName].
	DashboardName string
	// Mint, when set, is run instead of asking the operator (see the
	// package documentation for its protocol).
	Mint *Hook
	// Revoke, when set, is run instead of asking the operator.
	Revoke *Hook
	// Platform, when set, mints through Clerk's Platform API (see the
	// package documentation) instead of asking the operator; the hooks and
	// dashboard_name do not apply.
	Platform *Platform
}

// Platform names the Clerk application instance whose secret key the
// Platform API rotates, and where its access token is.
type Platform struct {
	// ApplicationID is the application (app_…).
	ApplicationID string
	// Instance is the instance: its environment type (development or
	// production) or its id (ins_…).
	Instance string
	// TokenEnv names the environment variable holding the Platform API
	// access token; default [DefaultTokenEnv]. The token itself is never an
	// option.
	TokenEnv string
}

// envName matches an environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// badIDChars may not appear in an id that becomes a path segment.
const badIDChars = "/?#% "

// Hook is a command run for a mint or a revoke, without a shell.
type Hook struct {
	// Command is the program and its arguments.
	Command []string
	// Timeout bounds one run; default [exec.DefaultTimeout].
	Timeout time.Duration
}

// dashboardNameVar matches the placeholders of a dashboard name.
var dashboardNameVar = regexp.MustCompile(`\{[^}]*\}`)

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
	if o.DashboardName == "" {
		o.DashboardName = DefaultDashboardName
	}
	if o.Platform != nil {
		pl := *o.Platform
		if pl.TokenEnv == "" {
			pl.TokenEnv = DefaultTokenEnv
		}
		o.Platform = &pl
	}
	return o
}

// ConsumedEnv lists the environment variable holding the Platform API
// token (Platform.TokenEnv) in platform mode, which rotor keeps from the
// processes it starts (hooks, `rotor run` children) unless told to pass it.
func (o Options) ConsumedEnv() []string {
	if o.Platform == nil {
		return nil
	}
	return []string{o.WithDefaults().Platform.TokenEnv}
}

// platformEnv returns the key environment of a Platform instance named by
// its environment type, or "" for an instance id.
func platformEnv(instance string) string {
	switch instance {
	case InstanceProduction:
		return EnvLive
	case InstanceDevelopment:
		return EnvTest
	}
	return ""
}

// Validate reports every problem of o (after defaults) as a [field.List].
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs field.List
	errs.Add(field.NewPath("api_url"), clerkapi.CheckURL(o.APIURL))
	errs.Add(field.NewPath("timeout"), clerkapi.CheckTimeout(o.Timeout))
	switch o.Environment {
	case "", EnvLive, EnvTest:
	default:
		errs.Addf(field.NewPath("environment"), "unknown environment %q (want live or test)", o.Environment)
	}
	for _, m := range dashboardNameVar.FindAllString(o.DashboardName, -1) {
		if m != "{secret}" && m != "{date}" {
			errs.Addf(field.NewPath("dashboard_name"), "unknown placeholder %s (want {secret} or {date})", m)
		}
	}
	if len(o.DashboardName) > maxDashboardName {
		errs.Addf(field.NewPath("dashboard_name"), "must be at most %d characters", maxDashboardName)
	}
	for _, h := range []struct {
		name string
		hook *Hook
	}{{"mint", o.Mint}, {"revoke", o.Revoke}} {
		if h.hook == nil {
			continue
		}
		if len(h.hook.Command) == 0 || h.hook.Command[0] == "" {
			errs.Addf(field.NewPath(h.name, "command"), "hook needs a command")
		}
		if h.hook.Timeout < 0 {
			errs.Addf(field.NewPath(h.name, "timeout"), "must not be negative")
		}
	}
	if pl := o.Platform; pl != nil {
		validatePlatform(&errs, o, *pl)
	}
	return errs.Err()
}

func validatePlatform(errs *field.List, o Options, pl Platform) {
	at := field.NewPath("platform")
	switch {
	case pl.ApplicationID == "":
		errs.Addf(at.Child("application_id"), "application_id is required")
	case !strings.HasPrefix(pl.ApplicationID, "app_") || strings.ContainsAny(pl.ApplicationID, badIDChars):
		errs.Addf(at.Child("application_id"), "%q is not a Clerk application id (want app_…)", pl.ApplicationID)
	}
	switch {
	case pl.Instance == "":
		errs.Addf(at.Child("instance"), "instance is required (development, production or an instance id ins_…)")
	case pl.Instance == InstanceDevelopment || pl.Instance == InstanceProduction:
		if env := platformEnv(pl.Instance); o.Environment != "" && o.Environment != env {
			errs.Addf(field.NewPath("environment"), "%s keys (sk_%s_) cannot belong to the %s instance (sk_%s_ keys)", o.Environment, o.Environment, pl.Instance, env)
		}
	case !strings.HasPrefix(pl.Instance, "ins_") || strings.ContainsAny(pl.Instance, badIDChars):
		errs.Addf(at.Child("instance"), "%q is not an instance (want development, production or ins_…)", pl.Instance)
	}
	if !envName.MatchString(pl.TokenEnv) {
		// Quote it only when it cannot be a pasted token.
		errs.Addf(at.Child("token_env"), "must name an environment variable (e.g. %s), not hold the token itself", DefaultTokenEnv)
	}
	if o.Mint != nil {
		errs.Addf(field.NewPath("mint"), "a mint hook and platform exclude each other: the Platform API mints")
	}
	if o.Revoke != nil {
		errs.Addf(field.NewPath("revoke"), "a revoke hook and platform exclude each other: Clerk deletes the old key at the end of the delay")
	}
}

// ResolvePaths returns o with the hooks' programs resolved against dir
// (see [exec.ResolveProgram]).
func (o Options) ResolvePaths(dir string) Options {
	for _, h := range []**Hook{&o.Mint, &o.Revoke} {
		if *h != nil {
			c := **h
			c.Command = exec.ResolveProgram(dir, c.Command)
			*h = &c
		}
	}
	return o
}

// Provider is the Clerk instance secret key provider.
type Provider struct {
	secret        string
	api           *clerkapi.Client
	env           string // pinned environment, or ""
	dashboardName string // template
	mint, revoke  *exec.Command
	platform      *Platform
	lookupEnv     func(string) (string, bool)
	now           func() time.Time
}

var (
	_ provider.Provider       = (*Provider)(nil)
	_ provider.PromoteChecker = (*Provider)(nil)
)

type options struct {
	api       clerkapi.Config
	now       func() time.Time
	lookupEnv func(string) (string, bool)
}

// Option adjusts how a Provider talks to Clerk; the defaults suit
// production. What the operator configures is in [Options].
type Option func(*options)

// WithHTTPClient sets the HTTP client for Backend API calls.
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.api.HTTPClient = c } }

// WithRetryWait replaces the wait between retries (tests pass one that
// returns at once and records the durations).
func WithRetryWait(w clerkapi.WaitFunc) Option { return func(o *options) { o.api.Wait = w } }

// WithMaxAttempts bounds the attempts of one Backend API call (default 4).
func WithMaxAttempts(n int) Option { return func(o *options) { o.api.MaxAttempts = n } }

// WithClock sets the clock used to date new keys' Dashboard names.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLookupEnv replaces os.LookupEnv for reading the Platform API token.
func WithLookupEnv(f func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = f }
}

// New returns the provider of the secret called secret (its name appears
// in the instructions for the operator). Empty fields of cfg take their
// defaults.
func New(secret string, cfg Options, opts ...Option) (*Provider, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("clerk: %w", err)
	}
	o := options{api: clerkapi.Config{URL: cfg.APIURL, Timeout: cfg.Timeout}, now: time.Now, lookupEnv: os.LookupEnv}
	for _, opt := range opts {
		opt(&o)
	}
	api, err := clerkapi.New(o.api)
	if err != nil {
		return nil, fmt.Errorf("clerk: %w", err)
	}
	p := &Provider{secret: secret, api: api, env: cfg.Environment, dashboardName: cfg.DashboardName, now: o.now,
		platform: cfg.Platform, lookupEnv: o.lookupEnv}
	if p.platform != nil && p.env == "" {
		p.env = platformEnv(p.platform.Instance)
	}
	// A hook's stderr is quoted in errors; a key it prints there (the new
	// one, which rotor does not know yet) is scrubbed by its shape.
	if h := cfg.Mint; h != nil {
		p.mint = &exec.Command{Argv: h.Command, Timeout: h.Timeout, Redact: keyPattern}
	}
	if h := cfg.Revoke; h != nil {
		p.revoke = &exec.Command{Argv: h.Command, Timeout: h.Timeout, Redact: keyPattern}
	}
	return p, nil
}

// Environment returns the environment of a Clerk secret key, live or test,
// or an error wrapping [provider.ErrRejected] when value does not look like
// a secret key. The error never quotes value.
func Environment(value string) (string, error) {
	var env, rest string
	switch {
	case strings.HasPrefix(value, "sk_live_"):
		env, rest = EnvLive, value[len("sk_live_"):]
	case strings.HasPrefix(value, "sk_test_"):
		env, rest = EnvTest, value[len("sk_test_"):]
	case strings.HasPrefix(value, "pk_live_"), strings.HasPrefix(value, "pk_test_"):
		return "", fmt.Errorf("clerk: this is a publishable key (pk_…), not a secret key (sk_live_… or sk_test_…): %w", provider.ErrRejected)
	case strings.TrimSpace(value) != value:
		return "", fmt.Errorf("clerk: the key has leading or trailing whitespace (a stray newline?): %w", provider.ErrRejected)
	default:
		return "", fmt.Errorf("clerk: not a Clerk secret key (want the prefix sk_live_ or sk_test_): %w", provider.ErrRejected)
	}
	if strings.TrimSpace(rest) != rest {
		return "", fmt.Errorf("clerk: the key has trailing whitespace (a stray newline?): %w", provider.ErrRejected)
	}
	if len(rest) < 16 || strings.IndexFunc(rest, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) >= 0 {
		return "", fmt.Errorf("clerk: malformed sk_%s_ key (too short or unexpected characters; was it copied whole?): %w", env, provider.ErrRejected)
	}
	return env, nil
}

// checkKey checks value's format and, when the config pins one, its
// environment.
func (p *Provider) checkKey(value string) (string, error) {
	env, err := Environment(value)
	if err != nil {
		return "", err
	}
	if p.env != "" && env != p.env {
		return "", fmt.Errorf("clerk: a %s key (sk_%s_) where the config pins environment %s (sk_%s_): %w: %w",
			env, env, p.env, p.env, ErrEnvironmentMismatch, provider.ErrRejected)
	}
	return env, nil
}

// CheckPromote refuses a candidate that is not a secret key, or whose
// environment differs from the current key's: a test key over a live key
// would point production at a development instance.
func (p *Provider) CheckPromote(current *store.Key, candidate string) error {
	env, err := p.checkKey(candidate)
	if err != nil {
		return err
	}
	if current == nil || current.Value == "" {
		return nil
	}
	if current.Value == candidate {
		return fmt.Errorf("clerk: the candidate is the current key %s", current.ID)
	}
	curEnv, err := Environment(current.Value)
	if err != nil {
		return nil // a malformed current key proves nothing about the candidate
	}
	if env != curEnv {
		return fmt.Errorf("clerk: refusing to promote a %s key (sk_%s_) over the current %s key %s (sk_%s_): they belong to different Clerk instances (%s and %s): %w",
			env, env, curEnv, current.ID, curEnv, instanceKind(env), instanceKind(curEnv), ErrEnvironmentMismatch)
	}
	return nil
}

func instanceKind(env string) string {
	if env == EnvLive {
		return "production"
	}
	return "development"
}

// Test checks value's format, then asks Clerk: GET /v1/jwks answers 200
// for a key it accepts and 401 (an error wrapping [provider.ErrRejected])
// for an unknown or deleted one. Timeouts, 429 and 5xx are retried a few
// times and then returned as errors that do not wrap ErrRejected.
func (p *Provider) Test(ctx context.Context, value string) error {
	env, err := p.checkKey(value)
	if err != nil {
		return err
	}
	alive, rejection, err := p.alive(ctx, value)
	switch {
	case err != nil:
		return fmt.Errorf("clerk: test %s secret key: %w", env, err)
	case !alive:
		return fmt.Errorf("clerk: test %s secret key: Clerk does not accept it (deleted, or from another instance): %w: %w", env, provider.ErrRejected, rejection)
	}
	return nil
}

// alive reports whether Clerk accepts key: true on 200; false on 401, with
// Clerk's answer as rejection. Anything else is an error.
func (p *Provider) alive(ctx context.Context, key string) (ok bool, rejection, err error) {
	var jwks struct {
		Keys []json.RawMessage `json:"keys"`
	}
	err = p.api.Do(ctx, clerkapi.Call{Method: http.MethodGet, Path: "/jwks", Key: key, Idempotent: true}, &jwks)
	switch {
	case clerkapi.StatusOf(err) == http.StatusUnauthorized:
		return false, err, nil
	case err != nil:
		return false, nil, err
	case len(jwks.Keys) == 0:
		return false, nil, errors.New("clerk api: GET /v1/jwks: 200 without signing keys; is api_url Clerk's Backend API?")
	}
	return true, nil, nil
}

// keyName renders the Dashboard name for a key created now.
func (p *Provider) keyName() string {
	r := strings.NewReplacer("{secret}", p.secret, "{date}", p.now().UTC().Format(time.DateOnly))
	return r.Replace(p.dashboardName)
}

// Mint runs the mint hook when one is configured. Without one it returns a
// [*provider.ActionRequiredError] telling the operator to create a key in
// the Dashboard and stage it.
func (p *Provider) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	name := p.keyName()
	env := p.env
	if env == "" && req.Current != nil {
		env, _ = Environment(req.Current.Value)
	}
	if p.platform != nil {
		return p.platformMint(ctx, req)
	}
	if p.mint == nil {
		return provider.Credential{}, p.mintAction(name, env)
	}
	in, err := json.Marshal(hookRequest{Version: 1, Action: "mint", Secret: p.secret, DashboardName: name, Environment: env})
	if err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: mint hook: %w", err)
	}
	cmd := *p.mint
	cmd.Env = []string{"ROTOR_SECRET=" + p.secret, "ROTOR_ACTION=mint", "ROTOR_DASHBOARD_NAME=" + name, "ROTOR_CLERK_ENVIRONMENT=" + env}
	out, err := cmd.Run(ctx, in)
	if err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: mint hook: %w", err)
	}
	value := strings.TrimSpace(string(out))
	if strings.ContainsAny(value, "\r\n") {
		return provider.Credential{}, fmt.Errorf("clerk: mint hook: command %s printed several lines; want the new key alone", cmd.Name())
	}
	if _, err := p.checkKey(value); err != nil {
		return provider.Credential{}, fmt.Errorf("clerk: mint hook: command %s: %w", cmd.Name(), err)
	}
	return provider.Credential{Value: value, Meta: map[string]string{MetaDashboardName: name}}, nil
}

// hookRequest is the JSON object a mint or revoke hook reads on stdin.
type hookRequest struct {
	Version       int    `json:"version"`
	Action        string `json:"action"`
	Secret        string `json:"secret"`
	DashboardName string `json:"dashboard_name,omitempty"`
	Environment   string `json:"environment,omitempty"`
	KeyID         string `json:"key_id,omitempty"`
	Value         string `json:"value,omitempty"`
}

func (p *Provider) mintAction(name, env string) error {
	where := "the Clerk Dashboard of this secret's instance"
	if env != "" {
		where = fmt.Sprintf("the Clerk Dashboard of the %s instance (its keys start with sk_%s_)", instanceKind(env), env)
	}
	return &provider.ActionRequiredError{
		Action: fmt.Sprintf("Clerk has no API to create secret keys: create a key named %q in the Clerk Dashboard and stage it", name),
		Steps: []string{
			fmt.Sprintf("In %s, open API keys → Secret keys → Add new key.", where),
			fmt.Sprintf("Name it %q, so it can be told apart when the key it replaces is deleted.", name),
			fmt.Sprintf("Copy the new key and stage it from stdin (not as an argument, which shells record): rotor stage %s --from-stdin", p.secret),
			fmt.Sprintf("Run the rotation again: rotor rotate %s", p.secret),
			"Do not delete the current key yet: once its grace period is over, `rotor revoke` says which key to delete.",
		},
	}
}

// Revoke makes sure Clerk no longer accepts key. If Clerk already answers
// 401 it returns nil (revoke is idempotent). Otherwise it runs the revoke
// hook and confirms the key is gone, or, without a hook, returns a
// [*provider.ActionRequiredError] naming the key to delete in the Dashboard
// and asking for a rerun to confirm.
func (p *Provider) Revoke(ctx context.Context, key store.Key) error {
	if key.Value == "" {
		return fmt.Errorf("clerk: revoke key %s: no value recorded, so Clerk cannot be asked whether it is gone", key.ID)
	}
	alive, _, err := p.alive(ctx, key.Value)
	if err != nil {
		return fmt.Errorf("clerk: revoke key %s: check whether Clerk still accepts it: %w", key.ID, err)
	}
	if !alive {
		return nil
	}
	if p.platform != nil {
		return fmt.Errorf("clerk: revoke key %s: Clerk still accepts it; in platform mode Clerk deletes a rotated-out key when the delay set by the rotation ends (the grace period rounded up to whole hours): run revoke again after that", key.ID)
	}
	if p.revoke == nil {
		return p.revokeAction(key)
	}
	in, err := json.Marshal(hookRequest{Version: 1, Action: "revoke", Secret: p.secret, KeyID: key.ID,
		DashboardName: key.Meta[MetaDashboardName], Value: key.Value})
	if err != nil {
		return fmt.Errorf("clerk: revoke key %s: revoke hook: %w", key.ID, err)
	}
	cmd := *p.revoke
	cmd.Env = []string{"ROTOR_SECRET=" + p.secret, "ROTOR_ACTION=revoke", "ROTOR_KEY_ID=" + key.ID,
		"ROTOR_DASHBOARD_NAME=" + key.Meta[MetaDashboardName]}
	if _, err := cmd.Run(ctx, in, key.Value); err != nil {
		return fmt.Errorf("clerk: revoke key %s: revoke hook: %w", key.ID, err)
	}
	alive, _, err = p.alive(ctx, key.Value)
	switch {
	case err != nil:
		return fmt.Errorf("clerk: revoke key %s: the revoke hook ran; confirming with Clerk failed: %w", key.ID, err)
	case alive:
		return fmt.Errorf("clerk: revoke key %s: the revoke hook succeeded but Clerk still accepts the key; it stays recorded until a later revoke confirms it is gone", key.ID)
	}
	return nil
}

// DashboardHint returns how the Clerk Dashboard shows a secret key in its
// list: since 2026-10 it shows only the start and the end of each key
// (changelog "Secret keys are only shown once on the API keys page"), so
// the prefix and the last four characters tell keys apart there, e.g.
// "sk_live_…Wx3Q". It is "" for a value that is not a secret key. Four
// characters of a 40-character random key are what the Dashboard already
// shows; the rest never appears.
func DashboardHint(value string) string {
	env, err := Environment(value)
	if err != nil {
		return ""
	}
	return "sk_" + env + "_…" + value[len(value)-4:]
}

func (p *Provider) revokeAction(key store.Key) error {
	env, _ := Environment(key.Value)
	name := key.Meta[MetaDashboardName]
	hint := DashboardHint(key.Value)
	what := fmt.Sprintf("the key shown as %s (rotor key id %s)", hint, key.ID)
	if name != "" {
		what = fmt.Sprintf("the key named %q, shown as %s (rotor key id %s)", name, hint, key.ID)
	}
	where := "the Clerk Dashboard"
	if env != "" {
		where = fmt.Sprintf("the Clerk Dashboard of the %s instance", instanceKind(env))
	}
	find := fmt.Sprintf("Delete %s.", what)
	if name == "" {
		find = fmt.Sprintf("Delete %s: it has no recorded Dashboard name; rotor took it on %s. The Dashboard lists each key by its start and end: match the end. Do not delete the key rotor shows as current (rotor status %s).",
			what, key.CreatedAt.UTC().Format(time.DateOnly), p.secret)
	}
	return &provider.ActionRequiredError{
		Action: fmt.Sprintf("Clerk still accepts key %s and has no API to delete it: delete it in the Clerk Dashboard, then confirm", key.ID),
		Steps: []string{
			fmt.Sprintf("In %s, open API keys → Secret keys.", where),
			find,
			fmt.Sprintf("Confirm: rotor revoke %s again (rotor checks that Clerk now rejects the key, then clears it).", p.secret),
		},
	}
}
