// Package clerkapi is the small Clerk Backend API (BAPI) client that rotor's
// Clerk providers share: a bearer key per call, a timeout per attempt, and
// bounded retries that honour Retry-After. The same client makes the few
// Platform API calls rotor needs ([Client.RotateInstanceSecretKeys],
// [Client.GetApplication]), which share the base URL and error format and
// take a Platform API access token as the bearer.
//
// # Why not clerk-sdk-go
//
// The official SDK (github.com/clerk/clerk-sdk-go/v2) makes exactly one
// attempt per call and, when an error body is not Clerk's JSON (a proxy's
// 503 page), returns errors.New(body): the status code that tells a
// retryable 503 from a definite 401 is lost and an untrusted body ends up in
// the error text. Retrying around it would mean a RoundTripper that hides
// the policy from the code that owns it, and it has no call for rotating a
// machine key at all. The two or three endpoints rotor needs are plain
// JSON over HTTPS, so this package speaks to them with net/http. The
// example application (examples/clerk-app) uses the SDK, as an application
// should.
//
// # Retries
//
// A call is retried on 429, on 5xx and on network errors, at most
// [Config.MaxAttempts] times, waiting an exponential backoff or the
// server's Retry-After. Calls that change state ([Call.Idempotent] false)
// are only retried when the server cannot have acted on them (429, a refused
// connection): sending a rotate twice would end the grace period of the key
// it replaced (a machine key) or lose the only answer that holds the new
// key (a Platform rotate).
package clerkapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/internal/serviceurl"
)

// DefaultURL is Clerk's Backend API, without the version path.
const DefaultURL = "https://api.clerk.com"

// Defaults applied where a [Config] is silent.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultMaxAttempts   = 4
	DefaultMaxRetryAfter = time.Minute
)

// MaxTimeout is the longest per-attempt timeout the providers accept: a
// longer one would hold a rotation's lease on a Backend API that is not
// answering.
const MaxTimeout = 5 * time.Minute

// NormalizeURL returns an api_url without trailing slashes or /v1, the
// form [Config.URL] takes; "" stays "".
func NormalizeURL(raw string) string {
	return strings.TrimSuffix(strings.TrimRight(raw, "/"), "/v1")
}

// CheckURL returns why raw cannot be the Backend API's URL, or nil: the
// secret key travels in a header, so plain http is accepted only to a
// loopback address (an emulator).
func CheckURL(raw string) error {
	return serviceurl.Check(raw, DefaultURL, "the secret key")
}

// CheckTimeout returns why d cannot be a per-attempt timeout, or nil; zero
// means the default.
func CheckTimeout(d time.Duration) error {
	switch {
	case d < 0:
		return errors.New("must not be negative")
	case d > MaxTimeout:
		return fmt.Errorf("%s is longer than 5m", d)
	}
	return nil
}

// apiVersion pins the response shapes rotor decodes (the version the SDK in
// go.mod sends).
const apiVersion = "2025-04-10"

// maxBody bounds how much of a response is read.
const maxBody = 1 << 20

// WaitFunc waits d or until ctx is done. Tests inject one that returns at
// once and records d.
type WaitFunc func(ctx context.Context, d time.Duration) error

// Config configures a [Client].
type Config struct {
	// URL is the API's base URL without /v1; default [DefaultURL].
	URL string
	// HTTPClient sends the requests; default a client without a global
	// timeout (Timeout bounds each attempt instead).
	HTTPClient *http.Client
	// Timeout bounds one attempt, body included; default [DefaultTimeout].
	Timeout time.Duration
	// MaxAttempts bounds the attempts of one call; default
	// [DefaultMaxAttempts].
	MaxAttempts int
	// MaxRetryAfter is the longest Retry-After the client waits for; a
	// longer one ends the call with the error. Default [DefaultMaxRetryAfter].
	MaxRetryAfter time.Duration
	// Backoff returns the wait before attempt n+1 after attempt n failed
	// without a Retry-After; default exponential from 250ms, capped at 8s,
	// with jitter.
	Backoff func(n int) time.Duration
	// Wait sleeps between attempts; default a timer that stops with ctx.
	Wait WaitFunc
}

// Client calls Clerk's Backend API. It is safe for concurrent use.
type Client struct {
	base          string
	http          *http.Client
	timeout       time.Duration
	attempts      int
	maxRetryAfter time.Duration
	backoff       func(int) time.Duration
	wait          WaitFunc
}

// New returns a client for cfg, filling in defaults.
func New(cfg Config) (*Client, error) {
	c := &Client{
		base:          strings.TrimRight(cfg.URL, "/"),
		http:          cfg.HTTPClient,
		timeout:       cfg.Timeout,
		attempts:      cfg.MaxAttempts,
		maxRetryAfter: cfg.MaxRetryAfter,
		backoff:       cfg.Backoff,
		wait:          cfg.Wait,
	}
	if c.base == "" {
		c.base = DefaultURL
	}
	c.base = strings.TrimSuffix(c.base, "/v1")
	u, err := url.Parse(c.base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("clerk api url %q: want https://host", cfg.URL)
	}
	if c.http == nil {
		c.http = &http.Client{}
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.attempts <= 0 {
		c.attempts = DefaultMaxAttempts
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	if c.backoff == nil {
		c.backoff = defaultBackoff
	}
	if c.wait == nil {
		c.wait = sleep
	}
	return c, nil
}

// URL returns the base URL the client calls, without /v1.
func (c *Client) URL() string { return c.base }

// Call is one Backend API request.
type Call struct {
	Method string
	// Path is below /v1, e.g. "/jwks". Callers escape path segments.
	Path  string
	Query url.Values
	// Key is sent as "Authorization: Bearer <key>". It never appears in
	// an error.
	Key string
	// Body, when non-nil, is sent as JSON.
	Body any
	// Idempotent marks a call that may be sent again after an ambiguous
	// failure (a 5xx, a timeout, a dropped connection).
	Idempotent bool
}

// Error is a response other than 2xx, or a call that never got one.
type Error struct {
	Method string
	Path   string // as sent, e.g. /v1/jwks
	// StatusCode is the last HTTP status; 0 when no response arrived.
	StatusCode int
	// Code and Message are the first entry of Clerk's "errors" array, when
	// the body had one. Message is Clerk's text, shortened, with the key
	// scrubbed out.
	Code    string
	Message string
	TraceID string
	// Attempts is how many requests were sent.
	Attempts int
	// RetryAfter is the server's last Retry-After, if any.
	RetryAfter time.Duration
	// Err is the transport error when no response arrived.
	Err error
}

// Error describes the call, the status and Clerk's error code and message
// (never the key).
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "clerk api: %s %s: ", e.Method, e.Path)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.Code != "" || e.Message != "" {
			b.WriteString(" (" + e.Code)
			if e.Code != "" && e.Message != "" {
				b.WriteString(": ")
			}
			b.WriteString(e.Message + ")")
		}
		if e.Err != nil {
			b.WriteString(": ")
		}
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " [trace %s]", e.TraceID)
	}
	return b.String()
}

// Unwrap returns the transport error, if any.
func (e *Error) Unwrap() error { return e.Err }

// StatusOf returns the HTTP status of err's *Error, or 0.
func StatusOf(err error) int {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.StatusCode
	}
	return 0
}

// Do sends call, retrying as the package doc describes, and decodes a 2xx
// JSON body into out (when out is non-nil). Failures are *Error, or the
// context's error wrapped in one.
func (c *Client) Do(ctx context.Context, call Call, out any) error {
	var body []byte
	if call.Body != nil {
		b, err := json.Marshal(call.Body)
		if err != nil {
			return fmt.Errorf("clerk api: %s %s: encode body: %w", call.Method, call.Path, err)
		}
		body = b
	}
	for n := 1; ; n++ {
		resp, apiErr := c.once(ctx, call, body)
		if apiErr == nil {
			if out == nil || len(resp) == 0 {
				return nil
			}
			if err := json.Unmarshal(resp, out); err != nil {
				return &Error{Method: call.Method, Path: "/v1" + call.Path, StatusCode: http.StatusOK, Attempts: n,
					Err: errors.New("response is not the JSON expected")}
			}
			return nil
		}
		apiErr.Attempts = n
		if n >= c.attempts || !c.retryable(ctx, call, apiErr) {
			return apiErr
		}
		d := c.backoff(n)
		if apiErr.RetryAfter > 0 {
			if apiErr.RetryAfter > c.maxRetryAfter {
				return apiErr
			}
			d = apiErr.RetryAfter
		}
		if err := c.wait(ctx, d); err != nil {
			apiErr.Err = errors.Join(apiErr.Err, err)
			return apiErr
		}
	}
}

// once sends one attempt and reads the whole body under the attempt's
// timeout.
func (c *Client) once(ctx context.Context, call Call, body []byte) ([]byte, *Error) {
	path := "/v1" + call.Path
	fail := &Error{Method: call.Method, Path: path}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.base + path
	if len(call.Query) > 0 {
		u += "?" + call.Query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, call.Method, u, rd)
	if err != nil {
		fail.Err = fmt.Errorf("build request: %w", err)
		return nil, fail
	}
	req.Header.Set("Authorization", "Bearer "+call.Key)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Clerk-API-Version", apiVersion)
	req.Header.Set("User-Agent", "rotor")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		fail.Err = c.transportError(ctx, err)
		return nil, fail
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		fail.Err = c.transportError(ctx, err)
		return nil, fail
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return b, nil
	}
	fail.StatusCode = resp.StatusCode
	fail.TraceID = clean(resp.Header.Get("Clerk-Trace-Id"), call.Key, 64)
	fail.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	var eb struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"errors"`
		TraceID string `json:"clerk_trace_id"`
	}
	if json.Unmarshal(b, &eb) == nil {
		if len(eb.Errors) > 0 {
			fail.Code = clean(eb.Errors[0].Code, call.Key, 64)
			fail.Message = clean(eb.Errors[0].Message, call.Key, 200)
		}
		if fail.TraceID == "" {
			fail.TraceID = clean(eb.TraceID, call.Key, 64)
		}
	}
	return nil, fail
}

// transportError describes a failed round trip without the URL (which
// net/http puts in every error) and names our own timeout as such.
func (c *Client) transportError(ctx context.Context, err error) error {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("no answer within %s: %w", c.timeout, context.DeadlineExceeded)
	case ctx.Err() != nil:
		return ctx.Err()
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

func (c *Client) retryable(ctx context.Context, call Call, e *Error) bool {
	if ctx.Err() != nil {
		return false // the caller gave up
	}
	switch {
	case e.StatusCode == http.StatusTooManyRequests:
		return true
	case e.StatusCode >= 500:
		return call.Idempotent
	case e.StatusCode != 0:
		return false
	case refused(e.Err):
		return true // nothing reached the server
	}
	return call.Idempotent
}

// NotActedOn reports whether err says the server cannot have acted on the
// call: it answered 4xx (it refused the request: bad token, unknown
// resource, invalid body, rate limited) or the connection was refused. A
// 5xx, a timeout or a dropped connection leave that unknown.
func NotActedOn(err error) bool {
	e, ok := errors.AsType[*Error](err)
	switch {
	case !ok:
		return false
	case e.StatusCode >= 400 && e.StatusCode < 500:
		return true
	case e.StatusCode == 0:
		return refused(e.Err)
	}
	return false
}

func refused(err error) bool {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	if oe, ok := errors.AsType[*net.OpError](err); ok && oe.Op == "dial" {
		return true
	}
	return false
}

// clean shortens s, drops control characters and scrubs key from it, so
// that text from the server is safe to put in an error.
func clean(s, key string, max int) string {
	if key != "" {
		s = strings.ReplaceAll(s, key, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func defaultBackoff(n int) time.Duration {
	d := 250 * time.Millisecond << min(n-1, 5)
	d = min(d, 8*time.Second)
	// Full jitter in [d/2, d): spreads retries of many rotors hitting one
	// rate limit.
	return d/2 + rand.N(d/2)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
