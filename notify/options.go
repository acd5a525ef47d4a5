package notify

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/internal/serviceurl"
)

// Target types.
const (
	TypeSlack   = "slack"
	TypeWebhook = "webhook"
)

// Defaults of [Options].
const (
	DefaultAttempts   = 5
	DefaultTimeout    = 5 * time.Second
	DefaultExitWait   = 10 * time.Second
	DefaultRetryFor   = time.Hour
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultSource     = "rotor"
)

// Options configure notifications: where they go and how hard rotor tries.
type Options struct {
	// Targets receive the notifications their Events select.
	Targets []TargetOptions
	// Attempts bounds the tries of one delivery; default [DefaultAttempts].
	Attempts int
	// Timeout bounds one HTTP request; default [DefaultTimeout].
	Timeout time.Duration
	// ExitWait bounds how long a command that ends (rotor rotate) waits
	// for its deliveries, retries included; default [DefaultExitWait].
	// A delivery still failing then is recorded as failed.
	ExitWait time.Duration
	// RetryFor bounds how long a long-running process (rotor daemon,
	// rotor serve) retries one delivery in the background; default
	// [DefaultRetryFor].
	RetryFor time.Duration
	// MinBackoff and MaxBackoff bound the exponential wait between tries
	// (with jitter); defaults [DefaultMinBackoff], [DefaultMaxBackoff].
	// A receiver's Retry-After (Slack's rate limit) overrides it.
	MinBackoff, MaxBackoff time.Duration
	// Source is the CloudEvents source attribute (a URI reference) of
	// webhook deliveries; default [DefaultSource].
	Source string
}

// TargetOptions configure one receiver.
type TargetOptions struct {
	// Name identifies the target in audit records and logs; default
	// "<type>-<index>" (slack-0).
	Name string
	// Type is [TypeSlack] (a Slack incoming webhook) or [TypeWebhook]
	// (CloudEvents 1.0 JSON, optionally signed).
	Type string
	// URL is where deliveries are POSTed. Exactly one of URL and URLEnv:
	// a Slack webhook URL is itself a secret, so name the environment
	// variable holding it in URLEnv instead.
	URL    string
	URLEnv string
	// Events selects the kinds of event this target receives (see
	// [Kinds]); empty: every kind.
	Events []string
	// SigningKeyFile, for a webhook, signs every delivery (Standard
	// Webhooks headers, see the package doc) with the key in this file,
	// which rotor creates (0600) if it does not exist. SigningKeyEnv
	// names an environment variable holding the key instead. At most
	// one of them; neither: deliveries are not signed.
	SigningKeyFile string
	SigningKeyEnv  string
}

// WithDefaults returns o with its empty fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Attempts == 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ExitWait == 0 {
		o.ExitWait = DefaultExitWait
	}
	if o.RetryFor == 0 {
		o.RetryFor = DefaultRetryFor
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Source == "" {
		o.Source = DefaultSource
	}
	o.Targets = slices.Clone(o.Targets)
	for i := range o.Targets {
		if o.Targets[i].Name == "" {
			o.Targets[i].Name = fmt.Sprintf("%s-%d", o.Targets[i].Type, i)
		}
	}
	return o
}

// Validate reports every problem of o as a [field.List].
func (o Options) Validate() error {
	var errs field.List
	if o.Attempts < 1 {
		errs.Addf(field.NewPath("attempts"), "must be at least 1")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"timeout", o.Timeout}, {"exit_wait", o.ExitWait}, {"retry_for", o.RetryFor}, {"min_backoff", o.MinBackoff}, {"max_backoff", o.MaxBackoff}} {
		if d.v <= 0 {
			errs.Addf(field.NewPath(d.name), "must be positive")
		}
	}
	if o.MaxBackoff < o.MinBackoff {
		errs.Addf(field.NewPath("max_backoff"), "must not be less than min_backoff")
	}
	names := map[string]bool{}
	for i, t := range o.Targets {
		p := field.NewPath("targets", i)
		if names[t.Name] {
			errs.Addf(p.Child("name"), "target %q is defined twice", t.Name)
		}
		names[t.Name] = true
		switch t.Type {
		case TypeSlack, TypeWebhook:
		default:
			errs.Addf(p.Child("type"), "unknown target type %q (want slack or webhook)", t.Type)
		}
		switch {
		case (t.URL == "") == (t.URLEnv == ""):
			errs.Addf(p, "needs exactly one of url and url_env")
		case t.URL != "":
			if err := CheckURL(t.URL); err != nil {
				errs.Addf(p.Child("url"), "%v", err)
			}
		}
		for j, k := range t.Events {
			if !slices.Contains(Kinds, Kind(k)) {
				errs.Addf(p.Child("events", j), "unknown event %q (want one of %v)", k, Kinds)
			}
		}
		if t.SigningKeyFile != "" && t.SigningKeyEnv != "" {
			errs.Addf(p, "signing_key_file and signing_key_env are exclusive")
		}
		if t.Type == TypeSlack && (t.SigningKeyFile != "" || t.SigningKeyEnv != "") {
			errs.Addf(p, "a slack target cannot be signed (Slack does not check signatures on incoming webhooks)")
		}
	}
	return errs.Err()
}

// CheckURL returns why raw is not an acceptable target URL, or nil: https,
// or plain http to a loopback address, without user info, query or
// fragment (see package internal/serviceurl).
func CheckURL(raw string) error {
	return serviceurl.Check(raw, "https://hooks.example.com/rotor", "the notification")
}

// ResolvePaths returns o with relative signing key files made relative to
// dir.
func (o Options) ResolvePaths(dir string) Options {
	o.Targets = slices.Clone(o.Targets)
	for i, t := range o.Targets {
		if t.SigningKeyFile != "" && !filepath.IsAbs(t.SigningKeyFile) {
			o.Targets[i].SigningKeyFile = filepath.Join(dir, t.SigningKeyFile)
		}
	}
	return o
}

// ConsumedEnv lists the environment variables o reads: target URLs and
// signing keys, kept from the processes rotor starts.
func (o Options) ConsumedEnv() []string {
	var env []string
	for _, t := range o.Targets {
		for _, e := range []string{t.URLEnv, t.SigningKeyEnv} {
			if e != "" {
				env = append(env, e)
			}
		}
	}
	return env
}

// Wants reports whether the target receives events of kind k.
func (t TargetOptions) Wants(k Kind) bool {
	return len(t.Events) == 0 || slices.Contains(t.Events, string(k))
}
