package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/storesource"
)

// Backend is what the API serves: rotor's engine over its store, as the
// daemon wires it. Every method is called with the request's context (or,
// for the operations that change a secret, a context that outlives a
// client that hangs up, bounded by [WithOperationTimeout]).
//
// Errors should wrap the sentinels of packages store, rotation and
// provider (store.ErrNotFound for a secret that is not configured,
// rotation.ErrRotationInProgress, …): the server maps them to status codes
// and stable error codes (see [ErrorDetail]), and shows their messages to
// the caller, so they must never contain secret values. Any other error is
// answered as internal and only logged.
type Backend interface {
	// Names returns the names of the managed secrets.
	Names(ctx context.Context) ([]string, error)
	// Status returns the status of the secret called name: key ids,
	// expiries, rotation state, never values.
	Status(ctx context.Context, name string) (api.Status, error)
	// Rotate rotates the secret on behalf of initiator (the caller's
	// authenticated identity, for leases and audit records).
	Rotate(ctx context.Context, name, initiator string) (api.Result, error)
	// Rollback makes the previous key current again.
	Rollback(ctx context.Context, name, initiator string) (api.Result, error)
	// Stage tests value and stores it as the secret's next key; meta is
	// kept with it (never secret).
	Stage(ctx context.Context, name, value string, meta map[string]string, initiator string) (api.Staged, error)
	// Revoke revokes expired keys, or unexpired ones too when force is
	// set.
	Revoke(ctx context.Context, name string, force bool, initiator string) (api.Revoked, error)
	// KeySet returns the secret's key set (current, previous, next; never
	// pending) with its store version, for the watch endpoint.
	KeySet(ctx context.Context, name string) (KeySet, error)
	// Ready returns nil when the store answers.
	Ready(ctx context.Context) error
}

// Versioner is the optional interface of a [Backend] that can tell a
// secret's store version without reading its keys, more cheaply than
// KeySet (the Vault store reads the KV metadata, the AWS Secrets Manager
// store calls DescribeSecret). The readers behind watch
// streams then ask for the version at every poll and read the key set
// only when it moved, or when a key in the set they hold has expired.
// The version must be the one KeySet reports in Set.Version.
type Versioner interface {
	Version(ctx context.Context, name string) (store.Version, error)
}

// KeySet is a secret's key set as the watch endpoint sends it.
type KeySet struct {
	// Set holds the keys; Set.Version is the store version they were
	// loaded from.
	Set keyring.Set
	// Seq orders key sets: it must grow with every change of the stored
	// secret, across server restarts and replicas, so that a client never
	// goes back to an older set after a reconnection. [VersionSeq]
	// derives it from rotor's store versions. Zero means unknown: sets
	// are then delivered in the order they are read.
	Seq uint64
}

// KeySetOf is the key set of the secret s, loaded at version ver, as
// [storesource.SetOf] builds it at now, ordered by [VersionSeq]: what a
// [Backend] built on a rotor store answers KeySet with.
func KeySetOf(s *store.Secret, ver store.Version, now time.Time) (KeySet, error) {
	set, err := storesource.SetOf(s, ver, now)
	if err != nil {
		return KeySet{}, err
	}
	return KeySet{Set: set, Seq: VersionSeq(ver)}, nil
}

// VersionSeq returns the leading decimal number of a store version: the
// version itself for the file store and Vault KV v2, the serial for AWS
// Secrets Manager. It returns 0 when the version does not start with a
// digit.
func VersionSeq(v store.Version) uint64 {
	s := string(v)
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	n, err := strconv.ParseUint(s[:i], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// AuditLog is where the server records refused and unauthenticated
// requests and watch connections, and what GET /v1/audit reads.
// *audit.Log and *audit.Shared implement it.
type AuditLog interface {
	Append(ctx context.Context, e audit.Event) (audit.Record, error)
	Tail(ctx context.Context, n int) ([]audit.Record, error)
	Query(ctx context.Context, f audit.Filter, n int) ([]audit.Record, error)
}

var (
	_ AuditLog = (*audit.Log)(nil)
	_ AuditLog = (*audit.Shared)(nil)
)

// RequestInfo describes a finished request, for metrics (see
// [WithObserver]).
type RequestInfo struct {
	// Endpoint is the route pattern, e.g. "POST /v1/secrets/{name}/rotate",
	// or "unmatched".
	Endpoint string
	// Status is the response status code.
	Status int
	// Role is the caller's role, empty when unauthenticated.
	Role authz.Role
	// Duration is how long the request took (for a watch, the whole
	// stream).
	Duration time.Duration
	// Denial, for a refused request (401, 403, 429), says how its audit
	// record was kept: DenialRecorded, DenialCoalesced or
	// DenialRateLimited; empty otherwise. Every refusal is observed,
	// whether or not it got a record of its own.
	Denial string
}

// Defaults of the options.
const (
	DefaultWatchInterval    = time.Second
	DefaultHeartbeat        = 15 * time.Second
	DefaultOperationTimeout = 10 * time.Minute
	DefaultAuditRecords     = 100
	MaxAuditRecords         = 1000
)

// maxBodySize bounds request bodies.
const maxBodySize = 64 << 10

// maxDetailLen bounds the detail of the audit records the server writes.
const maxDetailLen = 1000

// Option configures a [Server].
type Option func(*options)

type options struct {
	log           *slog.Logger
	watchInterval time.Duration
	heartbeat     time.Duration
	opTimeout     time.Duration
	metrics       http.Handler
	openMetrics   bool
	plaintext     bool
	observe       func(RequestInfo)
	denyRate      float64
	denyBurst     int
	denyWindow    time.Duration
	now           func() time.Time
	sessionTTL    time.Duration
	maxSessions   int
}

// WithLogger sets where the server logs (errors it does not show callers,
// audit failures). Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithWatchInterval sets how often the key sets of watched secrets are
// read from the backend (default [DefaultWatchInterval]); [Server.Notify]
// makes the next read happen at once.
func WithWatchInterval(d time.Duration) Option { return func(o *options) { o.watchInterval = d } }

// WithHeartbeat sets how often an idle watch stream sends a comment line,
// so that proxies keep it open and clients notice a dead connection
// (default [DefaultHeartbeat]).
func WithHeartbeat(d time.Duration) Option { return func(o *options) { o.heartbeat = d } }

// WithOperationTimeout bounds rotate, rollback, stage and revoke (default
// [DefaultOperationTimeout]). They run to completion, or to this timeout,
// even if the client hangs up: the engine is resumable, but a rotation
// stopped mid-way holds its lease until it expires.
func WithOperationTimeout(d time.Duration) Option { return func(o *options) { o.opTimeout = d } }

// WithMetrics serves h (the Prometheus handler) at GET /metrics, to the
// admin and viewer roles, or to anybody with open set. Without it /metrics
// answers 404.
func WithMetrics(h http.Handler, open bool) Option {
	return func(o *options) { o.metrics, o.openMetrics = h, open }
}

// WithPlaintextValues lets stage requests and watch streams, which carry
// secret values, travel over plain HTTP from non-loopback peers. Use it
// only behind a proxy that terminates TLS; by default they are refused
// with tls_required unless the connection is TLS or from loopback.
func WithPlaintextValues() Option { return func(o *options) { o.plaintext = true } }

// WithObserver calls f after every request, for metrics. f must be quick
// and safe for concurrent use.
func WithObserver(f func(RequestInfo)) Option { return func(o *options) { o.observe = f } }

// WithClock sets the clock that tells when a key of a watched set has
// expired, so that the set is read again without it (default time.Now).
// Give it the backend's clock.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// Server is rotor's HTTP API. Create one with [New]; it is an
// [http.Handler]. Call [Server.Close] when shutting down, to end watch
// streams (http.Server.Shutdown waits for them otherwise):
//
//	srv := &http.Server{Handler: api}
//	srv.RegisterOnShutdown(api.Close)
type Server struct {
	backend Backend
	auth    authz.Authenticator
	audit   AuditLog
	opts    options
	mux     *http.ServeMux
	hub     *hub
	denials *denials
	page    *page // nil when the backend is no Overviewer
	// denialsDone is closed when the denials' flusher has written its
	// last summaries, after Close.
	denialsDone chan struct{}

	ctx    context.Context // done when Close is called
	cancel context.CancelFunc
}

var _ http.Handler = (*Server)(nil)

// New returns a server for backend that authenticates callers with auth
// (see [authz.Chain]) and records refusals in log.
func New(backend Backend, auth authz.Authenticator, log AuditLog, opts ...Option) (*Server, error) {
	if backend == nil || auth == nil || log == nil {
		return nil, errors.New("server: backend, authenticator and audit log are required")
	}
	o := options{
		log:           slog.New(slog.DiscardHandler),
		watchInterval: DefaultWatchInterval,
		heartbeat:     DefaultHeartbeat,
		opTimeout:     DefaultOperationTimeout,
		denyRate:      DefaultDenialRate,
		denyBurst:     DefaultDenialBurst,
		denyWindow:    DefaultDenialWindow,
		now:           time.Now,
		sessionTTL:    DefaultSessionTTL,
		maxSessions:   DefaultMaxSessions,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if o.watchInterval <= 0 || o.heartbeat <= 0 || o.opTimeout <= 0 || o.denyWindow <= 0 || o.denyRate <= 0 || o.denyBurst < 1 || o.sessionTTL <= 0 || o.maxSessions < 1 {
		return nil, errors.New("server: intervals, timeouts and denial limits must be positive")
	}
	if o.log == nil || o.now == nil {
		return nil, errors.New("server: nil logger or clock")
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{backend: backend, auth: auth, audit: log, opts: o, mux: http.NewServeMux(), ctx: ctx, cancel: cancel}
	s.hub = newHub(ctx, backend, o.watchInterval, o.now, o.log)
	s.denials = newDenials(log, o.denyRate, o.denyBurst, o.denyWindow, func(err error) {
		o.log.Error("audit refused requests", "err", err)
	})
	s.denialsDone = make(chan struct{})
	go func() {
		defer close(s.denialsDone)
		s.denials.run(ctx)
	}()
	s.routes()
	if err := s.pageRoutes(); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// Close ends every watch stream, stops reading key sets, and writes the
// audit summaries of refused requests still pending. Requests that arrive
// afterwards are still served, but watch streams end at once.
func (s *Server) Close() {
	s.cancel()
	s.hub.wait()
	<-s.denialsDone
}

// Notify tells the server that the secret called name may have changed, so
// that watch streams get the new key set without waiting for the next
// read. The server notifies itself after its own operations; call Notify
// after changes made elsewhere in the process (scheduled rotations, a
// file store watcher). Other processes (the CLI, other replicas) send
// POST /v1/secrets/{name}/notify. Notifications of a secret nobody
// watches cost nothing; a burst of them costs at most one extra read.
func (s *Server) Notify(name string) { s.hub.notify(name) }

// endpoint is one authenticated route.
type endpoint struct {
	pattern string
	action  authz.Action
	handle  func(w http.ResponseWriter, r *http.Request, c call)
}

// call is an authenticated, authorised request.
type call struct {
	p      authz.Principal
	secret string // the {name} of the route, if any
}

func (s *Server) routes() {
	eps := []endpoint{
		{"GET /v1/secrets", authz.ActionList, s.list},
		{"GET /v1/secrets/{name}", authz.ActionStatus, s.status},
		{"POST /v1/secrets/{name}/rotate", authz.ActionRotate, s.rotate},
		{"POST /v1/secrets/{name}/rollback", authz.ActionRollback, s.rollback},
		{"POST /v1/secrets/{name}/stage", authz.ActionStage, s.stage},
		{"POST /v1/secrets/{name}/revoke", authz.ActionRevoke, s.revoke},
		{"GET /v1/audit", authz.ActionAudit, s.auditTail},
		{"GET /v1/watch/{name}", authz.ActionWatch, s.watch},
		{"POST /v1/secrets/{name}/notify", authz.ActionNotify, s.notify},
	}
	for _, ep := range eps {
		s.mux.Handle(ep.pattern, s.guard(ep))
	}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, api.Probe{Status: "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	// The API's description holds nothing secret: anyone may read it.
	s.mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, http.StatusOK, api.OpenAPI())
	})
	metrics := endpoint{"GET /metrics", authz.ActionMetrics, func(w http.ResponseWriter, r *http.Request, _ call) {
		if s.opts.metrics == nil {
			writeError(w, http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: "metrics are not enabled"})
			return
		}
		s.opts.metrics.ServeHTTP(w, r)
	}}
	if s.opts.openMetrics {
		s.mux.HandleFunc(metrics.pattern, func(w http.ResponseWriter, r *http.Request) { metrics.handle(w, r, call{}) })
	} else {
		s.mux.Handle(metrics.pattern, s.guard(metrics))
	}
}

// ServeHTTP serves the API. Unknown paths and methods get JSON errors
// like everything else.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	h, pattern := s.mux.Handler(r)
	if pattern == "" {
		// The mux would answer 404 or 405 in plain text; ask it which,
		// and answer in JSON.
		rec := &headerRecorder{h: http.Header{}}
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed {
			sw.Header().Set("Allow", rec.h.Get("Allow"))
			writeError(sw, http.StatusMethodNotAllowed, ErrorDetail{Code: CodeMethodNotAllowed, Message: r.Method + " is not allowed here"})
		} else {
			writeError(sw, http.StatusNotFound, ErrorDetail{Code: CodeNotFound, Message: "no such endpoint"})
		}
		pattern = "unmatched"
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	if s.opts.observe != nil {
		s.opts.observe(RequestInfo{Endpoint: pattern, Status: sw.code(), Role: sw.role, Duration: time.Since(start), Denial: sw.denial})
	}
}

// guard authenticates and authorises a request for ep, and audits every
// refusal, before ep's handler runs.
func (s *Server) guard(ep endpoint) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := r.PathValue("name")
		token, ok := bearer(r)
		if !ok {
			s.refuse(w, r, ep.action, secret, anonymous(r), http.StatusUnauthorized,
				ErrorDetail{Code: CodeUnauthenticated, Message: "send a bearer token in the Authorization header"}, "no bearer token")
			return
		}
		p, err := s.auth.Authenticate(r.Context(), token)
		if err != nil {
			detail := err.Error()
			if claimed := authz.UnverifiedSubject(token); claimed != "" {
				detail += "; claimed (unverified) identity " + claimed
			}
			msg := strings.TrimPrefix(err.Error(), "unauthenticated: ")
			s.refuse(w, r, ep.action, secret, anonymous(r), http.StatusUnauthorized,
				ErrorDetail{Code: CodeUnauthenticated, Message: clip(msg)}, detail)
			return
		}
		if p.Subject == "" {
			p.Subject = "unknown"
		}
		if sw, ok := w.(*statusWriter); ok {
			sw.role = p.Role
		}
		if !authz.Allowed(p, ep.action, secret) {
			why := refusal(p, ep.action, secret)
			s.refuse(w, r, ep.action, secret, p.Subject, http.StatusForbidden,
				ErrorDetail{Code: CodeForbidden, Message: why}, why)
			return
		}
		if ep.action.PerSecret() {
			if err := store.ValidateName(secret); err != nil {
				writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeBadRequest, Message: err.Error()})
				return
			}
		}
		ep.handle(w, r, call{p: p, secret: secret})
	})
}

// refusal explains why p may not perform a on secret.
func refusal(p authz.Principal, a authz.Action, secret string) string {
	role := string(p.Role)
	if role == "" {
		return fmt.Sprintf("%s has no role (no rule matched) and may not %s", p.Subject, a)
	}
	// Would the role allow it on a secret it is granted?
	if secret != "" && authz.Allowed(authz.Principal{Role: p.Role, Secrets: []string{secret}}, a, secret) {
		return fmt.Sprintf("%s (role %s) is not granted secret %s", p.Subject, role, secret)
	}
	return fmt.Sprintf("role %s may not %s", role, a)
}

// refuse answers a refused request and records it in the audit log as
// denied, with the caller's identity: in a record of its own, or summed
// up with the client's other refusals, or, when the client has been
// refused too often, answered 429 (see [WithDenialLimits]).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, a authz.Action, secret, initiator string, status int, d ErrorDetail, detail string) {
	if s.deny(w, r, "api."+string(a), secret, initiator, detail) {
		s.denials.tooMany(w)
		return
	}
	writeError(w, status, d)
}

// deny records a refused request in the audit log as denied, with action
// (e.g. "api.rotate") and the caller's identity: in a record of its own,
// or summed up with the client's other refusals (see [WithDenialLimits]).
// It reports whether the caller has been refused too often and must be
// answered 429; the caller writes the answer.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, action, secret, initiator, detail string) (limited bool) {
	limited, record := s.denials.decide(r.Context(), initiator)
	if sw, ok := w.(*statusWriter); ok {
		switch {
		case limited:
			sw.denial = DenialRateLimited
		case record:
			sw.denial = DenialRecorded
		default:
			sw.denial = DenialCoalesced
		}
	}
	if record {
		if store.ValidateName(secret) != nil {
			secret = "" // not a name: do not copy arbitrary path text into the log
		}
		if limited {
			detail += " (answered 429: too many refusals)"
		}
		e := audit.Event{
			Initiator: initiator,
			Action:    action,
			Secret:    secret,
			Status:    audit.StatusDenied,
			Detail:    clipTo(fmt.Sprintf("%s %s from %s: %s", r.Method, r.URL.Path, remoteHost(r), detail), maxDetailLen),
		}
		if _, err := s.audit.Append(context.WithoutCancel(r.Context()), e); err != nil {
			s.opts.log.Error("audit a refused request", "action", e.Action, "initiator", initiator, "err", err)
		}
	}
	return limited
}

func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// anonymous is the audit identity of an unauthenticated caller.
func anonymous(r *http.Request) string { return "unauthenticated:" + remoteHost(r) }

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// secure reports whether r may carry secret values: it came over TLS or
// from a loopback peer, or the server was told TLS ends at a proxy.
func (s *Server) secure(r *http.Request) bool {
	if s.opts.plaintext || r.TLS != nil {
		return true
	}
	ip := net.ParseIP(remoteHost(r))
	return ip != nil && ip.IsLoopback()
}

// statusWriter records the status of a response and the caller's role.
type statusWriter struct {
	http.ResponseWriter
	status int
	role   authz.Role
	denial string // see RequestInfo.Denial
}

// WriteHeader records the first status.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes and
// deadlines of watch streams).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// headerRecorder captures what the mux's own 404 and 405 handlers write.
type headerRecorder struct {
	h      http.Header
	status int
}

// Header returns the recorded header.
func (r *headerRecorder) Header() http.Header { return r.h }

// WriteHeader records the status.
func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// Write discards the body.
func (r *headerRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}
