package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/daemon"
	"github.com/rotor-dev/rotor/metrics"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/server"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/file"
	"github.com/rotor-dev/rotor/storesource"
)

func newServeCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve [--listen ADDR]",
		Short: "Serve rotor's authenticated API (no schedule; see daemon)",
		Long: `Serve runs rotor's HTTP API: status, rotate, rollback, stage, revoke, audit,
the watch stream SDK consumers subscribe to, /healthz, /readyz and /metrics.
Callers authenticate with bearer tokens (stored hashed in rotor.yaml) or
GitHub Actions OIDC tokens mapped to roles; every refusal is audited. The
server block of rotor.yaml configures it (README, "Access control").
A status page for people is served at / (log in with an API token; README,
"Status page").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAPI(cmd.Context(), g, listen, false, 0)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on (default: server.listen, 127.0.0.1:8700)")
	return cmd
}

func newDaemonCmd(g *globals) *cobra.Command {
	var listen string
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "daemon [--listen ADDR] [--interval 1m]",
		Short: "Run the rotation schedule and serve the API (safe as several replicas)",
		Long: `Daemon rotates every secret when it is due and revokes keys whose grace
period is over, checking every --interval, and serves the same API as
rotor serve. Several replicas may run against one store: the lease in the
store decides who rotates, so each due rotation happens once. On SIGTERM
the daemon finishes the step in flight, parks the rotation for the next
run, and exits. Logs are JSON on stderr; key values never appear in them.
The status page is served at / as by rotor serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval < time.Second {
				return usagef("daemon: --interval must be at least 1s")
			}
			return runAPI(cmd.Context(), g, listen, true, interval)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve the API on (default: server.listen, 127.0.0.1:8700)")
	cmd.Flags().DurationVar(&interval, "interval", time.Minute, "how often to check the schedule")
	return cmd
}

// runAPI serves the API and, for the daemon, runs the schedule, until ctx
// is cancelled (SIGINT, SIGTERM).
func runAPI(ctx context.Context, g *globals, listen string, schedule bool, interval time.Duration) error {
	if schedule && g.initiator == "" && g.env.getenv("ROTOR_INITIATOR") == "" {
		g.initiator = audit.InitiatorSystem
	}
	g.serving = true // notifications retry in the background
	a, err := g.open(ctx)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(g.env.stderr, nil))
	a.engine.Log = log
	a.metrics = metrics.New(a.metricsStatus, a.now, log)
	if len(g.sinks) > 0 {
		if err := a.metrics.Register(sinkCollector{shippers: g.sinks}); err != nil {
			return err
		}
	}
	a.engine.Audit = a.recorderFor(g.initiatorName())

	api, err := a.apiServer(log)
	if err != nil {
		return err
	}
	defer api.Close()
	lc := server.ListenConfig{Addr: a.cfg.Server.Listen, CertFile: a.cfg.Server.TLS.CertFile, KeyFile: a.cfg.Server.TLS.KeyFile, AllowPlaintext: a.cfg.Server.AllowPlaintext}
	if listen != "" {
		lc.Addr = listen
	}
	ln, err := lc.Listen()
	if err != nil {
		return err
	}
	log.Info("rotor API listening", "addr", ln.Addr().String(), "tls", lc.CertFile != "")
	if f := g.env.getenv("ROTOR_READY_FILE"); f != "" {
		// Tests and supervisors learn the bound address (with --listen :0).
		_ = os.WriteFile(f, []byte(ln.Addr().String()), 0o600)
	}

	// Rotations by other processes on this machine (the CLI from cron)
	// reach watchers at once: the file store's files are watched. (With
	// Vault or AWS, those processes send notify; see server.notify.)
	if fs, ok := a.store.(*file.Store); ok {
		stop, err := fs.Watch(api.Notify)
		if err != nil {
			log.Warn("cannot watch the file store: rotations by other processes reach watchers at the next poll", "err", err)
		} else {
			defer stop()
		}
	}
	// Watchers hear about a promote at once, not at the next poll.
	onStep := a.engine.OnStep
	a.engine.OnStep = func(name string, step store.Step, s *store.Secret) {
		a.metrics.OnStep(name, step)
		if step == store.StepPromote || step == store.StepFinish {
			api.Notify(name)
		}
		if onStep != nil {
			onStep(name, step, s)
		}
	}
	go a.watchAudit(ctx, log, api.AuditVerified)
	errc := make(chan error, 2)
	go func() { errc <- server.Serve(ctx, ln, api, log) }()
	if schedule {
		d := &daemon.Daemon{Engine: a.engine, Interval: interval, Log: log, Secrets: a.allSecrets}
		go func() { errc <- d.Run(ctx) }()
	}
	err = <-errc
	if schedule && err == nil {
		err = <-errc
	}
	return err
}

// Periodic audit chain checks of serve and the daemon.
const (
	auditCheckInterval = 5 * time.Minute
	// auditFullInterval is how often the periodic check of a shared chain
	// rereads all of it, beyond the full check at start.
	auditFullInterval = 24 * time.Hour
)

// watchAudit verifies the audit chain at start and every
// auditCheckInterval, for the rotor_audit_chain_valid metric and the log.
// A shared chain is read whole at start and every auditFullInterval; the
// checks in between read only what was appended since, and the head (see
// audit.Verifier). The local log is read whole each time: it is a local
// file, and its verifier streams. report gets every outcome too (the
// status page shows the chain's state).
func (a *app) watchAudit(ctx context.Context, log *slog.Logger, report func(error)) {
	check, full := a.audit.Verify, a.audit.Verify
	if sh, ok := unwrap(a.audit).(*sharedTrail); ok {
		v := sh.NewVerifier()
		check, full = v.Check, v.Full
	}
	t := time.NewTicker(auditCheckInterval)
	defer t.Stop()
	lastFull := time.Now()
	broken := false
	for {
		verify := check
		if time.Since(lastFull) >= auditFullInterval {
			verify, lastFull = full, time.Now()
		}
		_, err := verify(ctx)
		if ctx.Err() != nil {
			return
		}
		a.metrics.AuditVerified(err)
		report(err)
		a.chainChecked(err, &broken)
		if err != nil {
			log.Error("audit chain verification failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// apiServer builds the API handler from the server block of the config.
func (a *app) apiServer(log *slog.Logger) (*server.Server, error) {
	sc := a.cfg.Server
	var auths []authz.Authenticator
	if len(sc.Tokens) > 0 {
		ta, err := authz.NewTokenAuthenticator(sc.Tokens)
		if err != nil {
			return nil, err
		}
		auths = append(auths, ta)
	}
	for _, o := range sc.OIDC {
		v, err := authz.NewOIDCVerifier(authz.OIDCConfig{Issuer: o.Issuer, Audience: o.Audience, JWKSURL: o.JWKSURL, Rules: o.Rules, ClockSkew: time.Duration(o.ClockSkew)})
		if err != nil {
			return nil, err
		}
		auths = append(auths, v)
	}
	if len(auths) == 0 {
		log.Warn("no tokens or OIDC issuers configured: every API request will be refused")
	}
	opts := []server.Option{server.WithLogger(log), server.WithMetrics(a.metrics.Handler(), sc.MetricsOpen), server.WithClock(a.now),
		server.WithObserver(func(ri server.RequestInfo) {
			if ri.Denial != "" {
				a.metrics.Denied(ri.Denial)
			}
		})}
	if sc.WatchInterval > 0 {
		opts = append(opts, server.WithWatchInterval(time.Duration(sc.WatchInterval)))
	}
	if sc.AllowPlaintext {
		opts = append(opts, server.WithPlaintextValues())
	}
	var b server.Backend = &backend{a: a}
	if v, ok := a.store.(storesource.Versioner); ok {
		b = &versionedBackend{backend: &backend{a: a}, v: v}
	}
	return server.New(b, authz.Chain(auths...), a.audit, opts...)
}

// allSecrets returns every configured secret, for the daemon.
func (a *app) allSecrets() ([]rotation.Secret, error) {
	var ss []rotation.Secret
	for _, n := range a.names() {
		s, err := a.secret(n)
		if err != nil {
			return nil, err
		}
		ss = append(ss, s)
	}
	return ss, nil
}

// metricsStatus feeds the metrics' gauges.
func (a *app) metricsStatus(ctx context.Context) ([]metrics.SecretStatus, error) {
	var out []metrics.SecretStatus
	for _, n := range a.names() {
		sec, err := a.secret(n)
		if err != nil {
			return nil, err
		}
		s, _, err := a.engine.Load(ctx, n)
		if err != nil {
			return nil, fmt.Errorf("load %s: %w", n, err)
		}
		out = append(out, metrics.SecretStatus{Name: n, Current: s.Current, Previous: s.Previous,
			LastRotatedAt: s.LastRotatedAt, NextRotation: sec.NextRotation(s), Interval: sec.Every})
	}
	return out, nil
}
