package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	auditsinks "github.com/rotor-dev/rotor/audit/sinks"
	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/schedule"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/vault"
)

// maxClockSkew is the largest difference between rotor's clock and the
// store's that doctor accepts: leases and grace periods are compared
// across machines, and a clock this far off shortens or stretches them.
const maxClockSkew = 30 * time.Second

// doctorProblems is the error of a doctor run that found problems (exit 8).
type doctorProblems struct{ n int }

func (e doctorProblems) Error() string {
	if e.n == 1 {
		return "doctor found 1 problem"
	}
	return fmt.Sprintf("doctor found %d problems", e.n)
}

// doctor collects the checks of one run.
type doctor struct {
	doc api.Doctor
}

func (d *doctor) add(check, subject, status, detail, hint string) {
	d.doc.Checks = append(d.doc.Checks, api.DoctorCheck{Check: check, Subject: subject, Status: status, Detail: detail, Hint: hint})
	if status == api.DoctorProblem {
		d.doc.Problems++
	}
}

func (d *doctor) ok(check, subject, detail string) { d.add(check, subject, api.DoctorOK, detail, "") }
func (d *doctor) problem(check, subject, detail, hint string) {
	d.add(check, subject, api.DoctorProblem, detail, hint)
}
func (d *doctor) skip(check, subject, detail string) {
	d.add(check, subject, api.DoctorSkipped, detail, "")
}

func newDoctorCmd(g *globals) *cobra.Command {
	out := outputFlag{}
	cmd := &cobra.Command{
		Use:   "doctor [-o text|json]",
		Short: "Check the config, store, files, clock, providers, hooks, schedule and audit sinks",
		Long: `Doctor is a preflight: it checks, without changing anything,
  config    the config loads and validates
  salt      the audit salt exists and only its owner can read it
  identity  the file store's age identity exists and is mode 0600 or stricter
  store_dir the file store's directory exists and only its owner can write it
  store     the store is reachable and accepts rotor's credentials (Vault: an
            unreachable server is told from a rejected token), and every
            secret's record can be read
  clock     rotor's clock against the store's (Vault: its HTTP Date header;
            more than 30s apart is a problem)
  schedule  every secret's schedule can fire, and its grace period and
            jitter are shorter than the time between rotations (every, or
            the shortest gap of its cron expression)
  provider  each secret's current key passes its provider's test: the
            issuer accepts it (Clerk, postgres, exec's test command), or
            for random, its format
  hook      command hooks exist and are executable
  audit_sink every audit sink can be reached: a TCP connection to a syslog
            server (nothing is sent), one probe log record (event
            rotor.doctor.probe, not an audit record) to an OTLP receiver;
            UDP syslog cannot be confirmed and is skipped
  notify    every notification target's url_env is set to an acceptable URL
            and its signing key can be read (nothing is sent: a test
            message would reach people)

It prints one line per check (ok, problem or skipped, with a hint for a
problem) and never a key value. It exits 0 when every check passed and 8
when any found a problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd); err != nil {
				return err
			}
			d := &doctor{}
			d.run(cmd.Context(), g)
			d.doc.OK = d.doc.Problems == 0
			err := out.print(cmd.OutOrStdout(), d.doc, func(w io.Writer) error {
				for _, c := range d.doc.Checks {
					printCheck(w, c)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if d.doc.Problems > 0 {
				return doctorProblems{n: d.doc.Problems}
			}
			return nil
		},
	}
	out.register(cmd, "text")
	return cmd
}

// printCheck prints one check on one line.
func printCheck(w io.Writer, c api.DoctorCheck) {
	name := c.Check
	if c.Subject != "" {
		name += " " + c.Subject
	}
	// A multi-line detail (Vault's error lists) goes on the one line.
	detail := strings.NewReplacer("\n", "; ", "\t", "").Replace(c.Detail)
	line := fmt.Sprintf("%-8s %s: %s", c.Status, name, detail)
	if c.Hint != "" {
		line += " (hint: " + c.Hint + ")"
	}
	fmt.Fprintln(w, line)
}

// run runs the checks; a check that needs what an earlier one could not
// provide is skipped.
func (d *doctor) run(ctx context.Context, g *globals) {
	cfg, err := config.Load(g.config)
	if err != nil {
		d.problem("config", g.config, err.Error(), "fix the config; `rotor init` writes a working example")
		return
	}
	d.ok("config", cfg.Path, fmt.Sprintf("%d secrets, %s store", len(cfg.Secrets), cfg.Store.Type))
	now, err := g.clock()
	if err != nil {
		d.problem("clock", "", err.Error(), "")
		return
	}

	if _, err := audit.LoadSalt(cfg.Audit.SaltFile); err != nil {
		d.problem("salt", cfg.Audit.SaltFile, err.Error(), fileHint(err, cfg.Audit.SaltFile))
	} else {
		d.ok("salt", cfg.Audit.SaltFile, "present, owner-only")
	}

	storeUsable := true
	if cfg.Store.Type == "file" {
		fc := cfg.Store.File
		if err := checkOwnerOnly(fc.Identity, false, 0o077); err != nil {
			d.problem("identity", fc.Identity, err.Error(), fileHint(err, fc.Identity))
			storeUsable = false
		} else {
			d.ok("identity", fc.Identity, "present, owner-only")
		}
		if err := checkOwnerOnly(fc.Dir, true, 0o022); err != nil {
			d.problem("store_dir", fc.Dir, err.Error(), fileHint(err, fc.Dir))
			storeUsable = false
		} else {
			d.ok("store_dir", fc.Dir, "present, only its owner may write it")
		}
	}

	var st store.Store
	if storeUsable {
		st = d.checkStore(ctx, g, cfg)
	} else {
		d.skip("store", cfg.Store.Type, "the files above must be fixed first")
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	d.checkClock(ctx, st, now)
	d.checkSchedules(cfg, now())
	d.checkProviders(ctx, cfg, st)
	d.checkHooks(cfg)
	d.checkSinks(ctx, g, cfg)
	d.checkNotifications(g, cfg)
}

// checkOwnerOnly checks that path exists, is a directory when dir is set
// (a regular file otherwise), and has none of the permission bits in deny.
func checkOwnerOnly(path string, dir bool, deny fs.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	switch {
	case dir && !fi.IsDir():
		return fmt.Errorf("%s is not a directory", path)
	case !dir && !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file", path)
	}
	// Windows has no Unix permission bits; its ACLs are the operator's job.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&deny != 0 {
		what := "read"
		if dir {
			what = "write"
		}
		return fmt.Errorf("%s has mode %04o, which lets group or others %s it", path, perm, what)
	}
	return nil
}

// fileHint says how to fix a missing or too widely readable file.
func fileHint(err error, path string) string {
	if errors.Is(err, fs.ErrNotExist) {
		return "run `rotor init` in the config's directory to create what is missing"
	}
	if strings.Contains(err.Error(), "mode") {
		if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
			return "chmod 700 " + path
		}
		return "chmod 600 " + path
	}
	return ""
}

// checkStore opens the store and reads every configured secret's record.
func (d *doctor) checkStore(ctx context.Context, g *globals, cfg *config.Config) store.Store {
	st, err := openStore(ctx, cfg, g.initiatorName())
	var ue *vault.UnreachableError
	switch {
	case errors.As(err, &ue):
		d.problem("store", cfg.Store.Type, err.Error(), "Vault is unreachable: check the address (store.vault.address or VAULT_ADDR), that Vault runs, and the network")
		return nil
	case errors.Is(err, vault.ErrAuthRejected):
		d.problem("store", cfg.Store.Type, err.Error(), "Vault answered but refused the credentials: renew the token or fix the auth block")
		return nil
	case err != nil:
		d.problem("store", cfg.Store.Type, err.Error(), "")
		return nil
	}
	var missing []string
	for _, sc := range cfg.Secrets {
		if _, _, err := st.Load(ctx, sc.Name); errors.Is(err, store.ErrNotFound) {
			missing = append(missing, sc.Name)
		} else if err != nil {
			d.problem("store", sc.Name, err.Error(), "the store is reachable but this secret's record cannot be read; check the policy (`rotor policy`)")
			return st
		}
	}
	detail := fmt.Sprintf("reachable, %d secrets readable", len(cfg.Secrets)-len(missing))
	if len(missing) > 0 {
		detail += fmt.Sprintf(", not yet created: %s", strings.Join(missing, ", "))
	}
	d.ok("store", cfg.Store.Type, detail)
	return st
}

// checkClock compares rotor's clock with the store's, where the store
// tells its time.
func (d *doctor) checkClock(ctx context.Context, st store.Store, now func() time.Time) {
	timer, ok := st.(interface {
		ServerTime(context.Context) (time.Time, error)
	})
	if !ok {
		d.skip("clock", "", "the store does not tell its time")
		return
	}
	before := now()
	server, err := timer.ServerTime(ctx)
	if err != nil {
		d.problem("clock", "", err.Error(), "")
		return
	}
	// The server's Date header is truncated to the second; the local
	// time is taken as the middle of the request.
	local := before.Add(now().Sub(before) / 2)
	skew := local.Sub(server)
	if skew.Abs() > maxClockSkew+time.Second {
		d.problem("clock", "", fmt.Sprintf("rotor's clock is %s off the store's", skew.Round(time.Second)), "synchronise this machine's clock (NTP); leases and grace periods are compared across machines")
		return
	}
	d.ok("clock", "", fmt.Sprintf("within %s of the store's", maxClockSkew))
}

// checkSchedules checks that every secret's schedule can fire and leaves
// the previous key's grace period room before the next rotation.
func (d *doctor) checkSchedules(cfg *config.Config, now time.Time) {
	for i := range cfg.Secrets {
		sc := &cfg.Secrets[i]
		pol := cfg.Policy(sc)
		sch := cfg.Schedule(sc)
		interval, what := pol.Every, "every "+pol.Every.String()
		if sch.Cron != nil {
			interval, what = shortestCronInterval(sch, now), "cron "+sc.Cron
		}
		switch err := sch.Validate(); {
		case err != nil:
			d.problem("schedule", sc.Name, err.Error(), "set every (e.g. 30d) or cron")
		case pol.Grace >= interval:
			d.problem("schedule", sc.Name, fmt.Sprintf("grace %s is not shorter than the time between rotations (%s: %s)", pol.Grace, what, interval),
				"shorten grace or rotate less often: a rotation inside the grace period finds the previous key still valid")
		case sch.Jitter >= interval:
			d.problem("schedule", sc.Name, fmt.Sprintf("jitter %s is not shorter than the time between rotations (%s: %s)", sch.Jitter, what, interval),
				"shorten jitter: it delays each rotation by up to its length")
		default:
			d.ok("schedule", sc.Name, fmt.Sprintf("%s, grace %s", what, pol.Grace))
		}
	}
}

// shortestCronInterval is the shortest time between two of the next few
// firings of sch's cron expression after now.
func shortestCronInterval(sch schedule.Schedule, now time.Time) time.Duration {
	const firings = 16
	shortest := time.Duration(math.MaxInt64)
	t := sch.Cron.Next(now)
	for range firings {
		next := sch.Cron.Next(t)
		if next.IsZero() {
			break
		}
		shortest = min(shortest, next.Sub(t))
		t = next
	}
	return shortest
}

// checkProviders asks each secret's issuer whether the current key works.
func (d *doctor) checkProviders(ctx context.Context, cfg *config.Config, st store.Store) {
	for i := range cfg.Secrets {
		sc := &cfg.Secrets[i]
		p, err := sc.NewProvider()
		if err != nil {
			d.problem("provider", sc.Name, err.Error(), "")
			continue
		}
		if r, ok := p.(interface{ ReadSecretsFrom(store.Store) }); ok && st != nil {
			r.ReadSecretsFrom(st)
		}
		if st == nil {
			d.skip("provider", sc.Name, "the store could not be read")
			continue
		}
		s, _, err := st.Load(ctx, sc.Name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && s.Current == nil) {
			d.skip("provider", sc.Name, "no current key yet")
			continue
		}
		if err != nil {
			d.skip("provider", sc.Name, "the secret could not be read")
			continue
		}
		switch err := p.Test(ctx, s.Current.Value); {
		case err == nil:
			d.ok("provider", sc.Name, fmt.Sprintf("%s accepts the current key %s", sc.Provider, s.Current.ID))
		case errors.Is(err, provider.ErrRejected):
			d.problem("provider", sc.Name, fmt.Sprintf("%s rejects the current key %s: %v", sc.Provider, s.Current.ID, err), "rotate it (`rotor rotate "+sc.Name+"`) or stage a working key")
		default:
			d.problem("provider", sc.Name, fmt.Sprintf("%s could not test the current key %s: %v", sc.Provider, s.Current.ID, err), "check the issuer's address, credentials and the network")
		}
	}
}

// checkHooks checks that every command hook's program exists and is
// executable, found as the hook would find it (relative to the config's
// directory, or on PATH).
func (d *doctor) checkHooks(cfg *config.Config) {
	for i := range cfg.Secrets {
		sc := &cfg.Secrets[i]
		hooks := append(append([]config.Hook(nil), sc.Reload...), sc.Verify...)
		for _, h := range hooks {
			if len(h.Command) == 0 {
				continue
			}
			prog := h.Command[0]
			subject := sc.Name + " " + prog
			if err := checkExecutable(cfg.Dir, prog); err != nil {
				hint := "chmod +x " + prog
				if errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
					hint = "fix the hook's command path (relative paths start in the config's directory)"
				}
				d.problem("hook", subject, err.Error(), hint)
				continue
			}
			d.ok("hook", subject, "executable")
		}
	}
}

// sinkProbeTimeout bounds the probe of one audit sink.
const sinkProbeTimeout = 5 * time.Second

// checkSinks probes every configured audit sink (see auditsinks.Prober):
// a syslog server over TCP is connected to, an OTLP receiver is sent one
// probe log record that is not an audit record; stdout has nothing to
// reach, and UDP cannot be confirmed. Doctor writes no audit record.
func (d *doctor) checkSinks(ctx context.Context, g *globals, cfg *config.Config) {
	for _, c := range cfg.Audit.Sinks {
		sink, name, err := newSink(ctx, c, g)
		if err != nil {
			d.problem("audit_sink", c.Type, err.Error(), "fix audit.sinks in the config")
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, sinkProbeTimeout)
		if p, ok := sink.(auditsinks.Prober); ok {
			err = p.Probe(pctx)
		}
		closeSink(pctx, sink)
		cancel()
		switch {
		case errors.Is(err, auditsinks.ErrUnconfirmable):
			d.skip("audit_sink", name, "address resolves; "+err.Error())
		case err != nil:
			d.problem("audit_sink", name, err.Error(), "start the receiver or fix audit.sinks; while it is down, records wait in a bounded buffer and are dropped (counted in rotor_audit_sink_dropped_total) when it fills; the audit chain itself keeps every record")
		case c.Type == "stdout":
			d.ok("audit_sink", name, "writes JSON lines to standard output")
		case c.Type == "otlp":
			d.ok("audit_sink", name, "the receiver accepted a probe log record (event "+auditsinks.ProbeEventName+")")
		default:
			d.ok("audit_sink", name, "the server accepted a connection")
		}
	}
}

// closeSink releases what a sink holds, whichever Close it has.
func closeSink(ctx context.Context, s audit.Sink) {
	switch c := s.(type) {
	case interface{ Close(context.Context) error }:
		_ = c.Close(ctx)
	case io.Closer:
		_ = c.Close()
	}
}

// checkExecutable finds prog as exec does from dir and checks that it is
// an executable regular file.
func checkExecutable(dir, prog string) error {
	if !strings.ContainsRune(prog, os.PathSeparator) {
		_, err := exec.LookPath(prog)
		return err
	}
	path := prog
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", prog)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s is not executable (mode %04o)", prog, fi.Mode().Perm())
	}
	return nil
}
