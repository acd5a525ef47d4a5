package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	auditsinks "github.com/rotor-dev/rotor/audit/sinks"
	"github.com/rotor-dev/rotor/internal/otlpfake"
	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// TestDoctorVault runs rotor doctor against a real Vault: with a good
// token every check passes, including the clock against Vault's Date
// header and the issuer test of the current key; a rejected token and an
// unreachable Vault are each one store problem (exit 8) with their own
// hint, never confused with each other; no token appears in the output.
func TestDoctorVault(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	env, _ := sharedChainDir(t, srv, dir)
	mustRotorEnv(t, dir, env, "rotate", "demo")

	r := mustRotorEnv(t, dir, env, "doctor")
	for _, want := range []string{
		`(?m)^ok +store vault: reachable, 1 secrets readable, not yet created: sched$`,
		`(?m)^ok +clock: within 30s of the store's$`,
		`(?m)^ok +provider demo: random accepts the current key [0-9a-f]{16}$`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("healthy doctor output does not match %s:\n%s", want, r.stdout)
		}
	}

	const bogus = "hvs.doctor-bogus-token"
	rejected := rotor(t, dir, []string{"VAULT_TOKEN=" + bogus}, "doctor")
	checkStoreProblem(t, "rejected token", rejected, "token rejected", "Vault answered but refused the credentials", "unreachable")

	// A loopback port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()
	cfg := mustRead(t, filepath.Join(dir, "rotor.yaml"))
	cfg = []byte(strings.Replace(string(cfg), srv.Addr, closed, 1))
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	down := rotor(t, dir, append(env, "VAULT_MAX_RETRIES=0"), "doctor")
	checkStoreProblem(t, "unreachable Vault", down, "unreachable", "Vault is unreachable", "rejected")

	for _, out := range []string{r.stdout, r.stderr, rejected.stdout, rejected.stderr, down.stdout, down.stderr} {
		if strings.Contains(out, srv.Token) || strings.Contains(out, bogus) {
			t.Errorf("doctor printed a token:\n%s", out)
		}
	}
}

// checkStoreProblem checks that r is a doctor run with exactly one
// problem, the store's, whose line has detail and hint and not notWant.
func checkStoreProblem(t *testing.T, name string, r procResult, detail, hint, notWant string) {
	t.Helper()
	if r.code != exitDoctor {
		t.Errorf("%s: exit %d, want %d\n%s%s", name, r.code, exitDoctor, r.stdout, r.stderr)
	}
	var lines []string
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, "problem ") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "problem  store vault: ") {
		t.Fatalf("%s: problem lines %q, want one for the store", name, lines)
	}
	if !strings.Contains(lines[0], detail) || !strings.Contains(lines[0], "(hint: "+hint) {
		t.Errorf("%s: %q does not say %q with the hint %q", name, lines[0], detail, hint)
	}
	if strings.Contains(lines[0], notWant) {
		t.Errorf("%s: %q says %q", name, lines[0], notWant)
	}
}

// TestDoctorAuditSinks: doctor probes every configured audit sink — an
// OTLP receiver that is up gets one probe log record (not an audit
// record), one that is down is a problem with a hint (exit 8), a syslog
// server over TCP is connected to, UDP is reported as unconfirmable — and
// doctor adds nothing to the audit chain.
func TestDoctorAuditSinks(t *testing.T) {
	up, down := otlpfake.Start(t), otlpfake.Start(t)
	if err := down.SetDown(true); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	dir := t.TempDir()
	mustRotorEnv(t, dir, nil, "init")
	cfgPath := filepath.Join(dir, "rotor.yaml")
	sinks := "  sinks:\n" +
		"    - type: otlp\n      endpoint: " + up.URL() + "\n" +
		"    - type: otlp\n      endpoint: " + down.URL() + "\n" +
		"    - type: syslog\n      address: " + ln.Addr().String() + "\n" +
		"    - type: syslog\n      network: udp\n      address: " + ln.Addr().String() + "\n"
	cfg := strings.Replace(string(mustRead(t, cfgPath)), "audit:\n", "audit:\n"+sinks, 1)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	before := mustRotorEnv(t, dir, nil, "audit", "tail", "-n", "0", "-o", "json").stdout

	r := rotor(t, dir, nil, "doctor")
	if r.code != exitDoctor {
		t.Fatalf("doctor with a sink down: exit %d, want %d\n%s%s", r.code, exitDoctor, r.stdout, r.stderr)
	}
	for _, want := range []string{
		`(?m)^ok +audit_sink otlp ` + regexp.QuoteMeta(up.URL()) + `: the receiver accepted a probe log record`,
		`(?m)^problem +audit_sink otlp ` + regexp.QuoteMeta(down.URL()) + `: .*\(hint: start the receiver`,
		`(?m)^ok +audit_sink syslog tcp://` + regexp.QuoteMeta(ln.Addr().String()) + `: the server accepted a connection$`,
		`(?m)^skipped +audit_sink syslog udp://.*UDP gives no acknowledgement`,
	} {
		if !regexp.MustCompile(want).MatchString(r.stdout) {
			t.Errorf("doctor output does not match %s:\n%s", want, r.stdout)
		}
	}
	if n := strings.Count(r.stdout, "problem "); n != 1 {
		t.Errorf("%d problem lines, want 1 (the receiver that is down):\n%s", n, r.stdout)
	}
	logs := up.Logs()
	if len(logs) != 1 || logs[0].Record.GetEventName() != auditsinks.ProbeEventName {
		t.Errorf("the receiver that is up got %d records, want the one probe", len(logs))
	}
	if after := mustRotorEnv(t, dir, nil, "audit", "tail", "-n", "0", "-o", "json").stdout; after != before {
		t.Errorf("doctor changed the audit chain:\nbefore %s\nafter %s", before, after)
	}
}
