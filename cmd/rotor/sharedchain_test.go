package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/internal/dynamofake"
	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// sharedChainDir writes rotor.yaml for a Vault store under a fresh prefix
// of srv, with the local copy of the audit chain on, and the salt; it
// returns the environment rotor needs and the prefix.
func sharedChainDir(t *testing.T, srv *vaulttest.Server, dir string) (env []string, prefix string) {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	prefix = "rotortest-" + hex.EncodeToString(b)
	cfg := fmt.Sprintf(`store:
  type: vault
  vault:
    address: %s
    prefix: %s
audit:
  salt_file: .rotor/audit.salt
  local: true
secrets:
  - name: demo
    provider: random
  - name: sched # rotated by the daemon only
    provider: random
`, srv.Addr, prefix)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadOrCreateSalt(filepath.Join(dir, ".rotor", "audit.salt")); err != nil {
		t.Fatal(err)
	}
	return []string{"VAULT_TOKEN=" + srv.Token}, prefix
}

// TestSharedChainDaemonAndCLI runs the daemon and CLI rotations against
// one Vault store at once: every event lands in the one chain in Vault,
// which verifies from the CLI, the local copy verifies too, and no key
// value appears in any output or in the chain.
func TestSharedChainDaemonAndCLI(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	env, prefix := sharedChainDir(t, srv, dir)
	seen := daemonAndCLI(t, dir, env, "vault secret/data/"+prefix+"/_audit/")

	// The chain is in Vault, next to the secrets.
	head, err := srv.Client.Logical().Read("secret/data/" + prefix + "/_audit/head")
	if err != nil || head == nil {
		t.Fatalf("no chain head in Vault: %v", err)
	}
	// The local copy verifies on its own.
	salt, err := audit.LoadSalt(filepath.Join(dir, ".rotor", "audit.salt"))
	if err != nil {
		t.Fatal(err)
	}
	local, err := audit.Open(filepath.Join(dir, ".rotor", "audit.log"), filepath.Join(dir, ".rotor", "audit.head"), salt)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := local.Verify(t.Context()); err != nil || rep.Records == 0 {
		t.Fatalf("local copy: %+v, %v", rep, err)
	}
	seen = append(seen, fmt.Sprint(head.Data), string(mustRead(t, filepath.Join(dir, ".rotor", "audit.log"))))
	scanForValues(t, dir, env, seen)
}

// TestSharedChainAWSDaemonAndCLI is TestSharedChainDaemonAndCLI on an AWS
// store: the daemon and CLI processes extend one chain in DynamoDB, which
// verifies gap-free from the CLI, and no key value appears anywhere.
func TestSharedChainAWSDaemonAndCLI(t *testing.T) {
	sm := awsfake.Start(t, awsfake.Options{})
	db := dynamofake.Start(t)
	db.CreateTable("rotor-audit", "pk")
	dir := t.TempDir()
	env := awsChainDir(t, sm, db, dir)
	seen := daemonAndCLI(t, dir, env, "dynamodb rotor-audit rotor/")
	scanForValues(t, dir, env, seen)
}

// daemonAndCLI runs the daemon (which rotates sched on its schedule) and
// two CLI processes rotating demo twice each against the store of dir at
// once, then checks that the chain at where verifies, holds every
// record with no gap in seq, and holds the records of both. It returns
// everything rotor printed and the whole chain as JSON, for a scan.
func daemonAndCLI(t *testing.T, dir string, env []string, where string) (seen []string) {
	t.Helper()
	daemonEnv := append(slicesClone(env), "ROTOR_READY_FILE="+filepath.Join(dir, "api.ready"))
	daemon, daemonLogs := startBackground(t, dir, daemonEnv, "daemon", "--interval", "1s", "--listen", "127.0.0.1:0")

	// CLI rotations from two processes at once, alongside the daemon.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		outputs []string
		rotated int // CLI rotations that succeeded
	)
	for range 2 {
		wg.Go(func() {
			for range 2 {
				r := rotor(t, dir, env, "rotate", "demo")
				mu.Lock()
				outputs = append(outputs, r.stdout, r.stderr)
				if r.code == 0 {
					rotated++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	waitFor(t, "the daemon's scheduled rotation in the chain", func() bool {
		r := rotor(t, dir, env, "audit", "tail", "-n", "0", "--secret", "sched", "--initiator", "system", "-o", "json")
		if r.code != 0 {
			t.Logf("audit tail: %s", r.stderr)
		}
		return strings.Contains(r.stdout, `"action":"rotate.finish"`)
	})
	if err := daemon.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = daemon.Wait()

	v := mustRotorEnv(t, dir, env, "audit", "verify")
	if !strings.Contains(v.stdout, "audit chain ok ("+where+")") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
	all := mustRotorEnv(t, dir, env, "audit", "tail", "-n", "0", "-o", "json")
	for _, who := range []string{`"initiator":"system"`, `"initiator":"user:tester"`, `"action":"rotate.finish"`} {
		if !strings.Contains(all.stdout, who) {
			t.Errorf("the chain holds no record with %s", who)
		}
	}
	dec := json.NewDecoder(strings.NewReader(all.stdout))
	var n uint64
	finished := 0 // by the CLI
	for dec.More() {
		var r audit.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatal(err)
		}
		if n++; r.Seq != n {
			t.Fatalf("record %d of the chain has seq %d: the chain has a gap", n, r.Seq)
		}
		if r.Initiator == "user:tester" && r.Action == "rotate.finish" {
			finished++
		}
	}
	if !strings.Contains(v.stdout, fmt.Sprintf(": %d records,", n)) {
		t.Fatalf("audit verify counted other records than the %d tail printed: %s", n, v.stdout)
	}
	if rotated == 0 || finished != rotated {
		t.Fatalf("%d CLI rotations succeeded and the chain holds %d finished by the CLI", rotated, finished)
	}
	if strings.Contains(daemonLogs.String(), "audit chain verification failed") {
		t.Fatalf("the daemon found the chain broken:\n%s", daemonLogs.String())
	}
	return append(outputs, v.stdout, all.stdout, daemonLogs.String())
}

// scanForValues fails t if the current or previous value of demo appears
// in any of seen.
func scanForValues(t *testing.T, dir string, env []string, seen []string) {
	t.Helper()
	var values []string
	for _, slot := range []string{"current", "previous"} {
		r := mustRotorEnv(t, dir, env, "get", "demo", "--slot", slot, "--reveal")
		values = append(values, strings.TrimSpace(r.stdout))
	}
	for _, val := range values {
		if len(val) < 16 {
			t.Fatalf("get --reveal printed %q, not a key", val)
		}
		for _, out := range seen {
			if strings.Contains(out, val) {
				t.Fatalf("a key value appears in rotor's output or the audit chain")
			}
		}
	}
}

// TestSharedChainUnwritableFailsFirst gives rotor a token that may write
// the secrets but not the audit chain: the rotation fails before any key
// changes, saying why. (The engine takes its lease, a store write, before
// it records the start, and gives the lease back when the record fails.)
func TestSharedChainUnwritableFailsFirst(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	env, prefix := sharedChainDir(t, srv, dir)
	mustRotorEnv(t, dir, env, "rotate", "demo")
	before := mustRotorEnv(t, dir, env, "get", "demo").stdout
	policy := fmt.Sprintf(`path "secret/data/%[1]s/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/%[1]s/*" { capabilities = ["read", "list"] }
path "secret/data/%[1]s/_audit/*" { capabilities = ["deny"] }
`, prefix)
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), "no-audit-"+prefix, policy); err != nil {
		t.Fatal(err)
	}
	tok, err := srv.Client.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{"no-audit-" + prefix}})
	if err != nil {
		t.Fatal(err)
	}
	r := rotor(t, dir, []string{"VAULT_TOKEN=" + tok.Auth.ClientToken}, "rotate", "demo")
	if r.code == 0 || !strings.Contains(r.stderr, "audit") || !strings.Contains(r.stderr, "403") {
		t.Fatalf("rotate without access to the audit chain: exit %d\n%s", r.code, r.stderr)
	}
	if after := mustRotorEnv(t, dir, env, "get", "demo").stdout; after != before {
		t.Fatalf("the current key went from %s to %s without an audit record", before, after)
	}
	st := mustRotorEnv(t, dir, env, "status", "demo", "-o", "json").stdout
	if !strings.Contains(st, `"pending": null`) {
		t.Fatalf("a pending key was created without an audit record: %s", st)
	}
}

func mustRotorEnv(t *testing.T, dir string, env []string, args ...string) procResult {
	t.Helper()
	r := rotor(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("rotor %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// awsChainDir writes rotor.yaml for an AWS store on the Secrets Manager
// emulator sm, whose shared chain is in the DynamoDB emulator db, and the
// salt; it returns the environment rotor needs.
func awsChainDir(t *testing.T, sm *awsfake.Server, db *dynamofake.Server, dir string) (env []string) {
	t.Helper()
	cfg := fmt.Sprintf(`store:
  type: awssm
  awssm:
    region: us-east-1
    endpoint: %s
audit:
  salt_file: .rotor/audit.salt
  endpoint: %s
secrets:
  - name: demo
    provider: random
  - name: sched # rotated by the daemon only
    provider: random
`, sm.URL(), db.URL())
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := audit.LoadOrCreateSalt(filepath.Join(dir, ".rotor", "audit.salt")); err != nil {
		t.Fatal(err)
	}
	return []string{"AWS_ACCESS_KEY_ID=AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY=secret", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
}

// TestSharedChainAWS runs rotations against an AWS store (the Secrets
// Manager emulator) whose shared chain is in DynamoDB (its emulator): two
// CLI processes at once, one chain that verifies, no key value in it.
func TestSharedChainAWS(t *testing.T) {
	sm := awsfake.Start(t, awsfake.Options{})
	db := dynamofake.Start(t)
	db.CreateTable("rotor-audit", "pk")
	dir := t.TempDir()
	env := awsChainDir(t, sm, db, dir)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		outputs []string
	)
	for range 2 {
		wg.Go(func() {
			r := rotor(t, dir, env, "rotate", "demo")
			mu.Lock()
			outputs = append(outputs, r.stdout, r.stderr)
			mu.Unlock()
		})
	}
	wg.Wait()
	mustRotorEnv(t, dir, env, "rotate", "demo")
	v := mustRotorEnv(t, dir, env, "audit", "verify")
	if !strings.Contains(v.stdout, "audit chain ok (dynamodb rotor-audit rotor/)") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
	all := mustRotorEnv(t, dir, env, "audit", "tail", "-n", "0", "-o", "json")
	if strings.Count(all.stdout, `"action":"rotate.finish"`) < 2 {
		t.Fatalf("the chain holds fewer than two finished rotations:\n%s", all.stdout)
	}
	if _, err := os.Stat(filepath.Join(dir, ".rotor", "audit.log")); !os.IsNotExist(err) {
		t.Errorf("a local audit log was written (%v); the chain is in DynamoDB", err)
	}
	val := strings.TrimSpace(mustRotorEnv(t, dir, env, "get", "demo", "--reveal").stdout)
	for _, out := range append(outputs, v.stdout, all.stdout) {
		if len(val) < 16 || strings.Contains(out, val) {
			t.Fatal("a key value appears in rotor's output or the audit chain")
		}
	}
}

// TestSharedChainAWSTable: with an AWS store and no audit table, a
// rotation fails before any key is written, saying to run `rotor audit
// init`; that creates the table (idempotently) and rotations then work.
func TestSharedChainAWSTable(t *testing.T) {
	sm := awsfake.Start(t, awsfake.Options{})
	db := dynamofake.Start(t)
	db.SetCreatingPolls(1)
	dir := t.TempDir()
	env := awsChainDir(t, sm, db, dir)

	r := rotor(t, dir, env, "rotate", "demo")
	if r.code == 0 || !strings.Contains(r.stderr, "table rotor-audit: the table does not exist") ||
		!strings.Contains(r.stderr, "rotor: hint: ") || !strings.Contains(r.stderr, "`rotor audit init`") {
		t.Fatalf("rotate without the audit table: exit %d\n%s", r.code, r.stderr)
	}
	for _, op := range []string{"CreateSecret", "PutSecretValue", "UpdateSecretVersionStage"} {
		if n := sm.Count(op, "rotor/demo"); n != 0 {
			t.Fatalf("rotate without the audit table called %s on the secret %d times", op, n)
		}
	}

	init1 := mustRotorEnv(t, dir, env, "audit", "init")
	if !strings.Contains(init1.stdout, "created DynamoDB table rotor-audit (on-demand, partition key pk)") {
		t.Fatalf("audit init: %s", init1.stdout)
	}
	if init2 := mustRotorEnv(t, dir, env, "audit", "init"); !strings.Contains(init2.stdout, "DynamoDB table rotor-audit exists: nothing to do") {
		t.Fatalf("second audit init: %s", init2.stdout)
	}
	rot := mustRotorEnv(t, dir, env, "rotate", "demo")
	if sm.Count("CreateSecret", "rotor/demo")+sm.Count("PutSecretValue", "rotor/demo") == 0 {
		t.Fatal("the emulator counted no write of rotor/demo by a rotation: the check above proves nothing")
	}
	if v := mustRotorEnv(t, dir, env, "audit", "verify"); !strings.Contains(v.stdout, "audit chain ok (dynamodb rotor-audit rotor/)") {
		t.Fatalf("audit verify: %s", v.stdout)
	}
	val := strings.TrimSpace(mustRotorEnv(t, dir, env, "get", "demo", "--reveal").stdout)
	for _, out := range []string{r.stdout, r.stderr, init1.stdout, rot.stdout, rot.stderr} {
		if len(val) < 16 || strings.Contains(out, val) {
			t.Fatal("a key value appears in rotor's output")
		}
	}
}

// TestSharedChainRotationBatches: a one-shot rotation writes its records
// to the shared chain in Vault as three batches — the started record (with
// the record of the save before it), the operation's steps up to its
// terminal record, and the record of the last save, written when the
// command ends — with the record of each of its saves (binding's
// store.save) inside those batches, not a batch of its own each (that
// was seven batches).
func TestSharedChainRotationBatches(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	env, prefix := sharedChainDir(t, srv, dir)
	mustRotorEnv(t, dir, env, "rotate", "demo") // the first rotation creates the secret
	batches := func() int {
		s, err := srv.Client.Logical().ListWithContext(t.Context(), "secret/metadata/"+prefix+"/_audit/records")
		if err != nil || s == nil {
			t.Fatalf("list the chain's batches: %v", err)
		}
		keys, _ := s.Data["keys"].([]any)
		return len(keys)
	}
	before := batches()
	mustRotorEnv(t, dir, env, "rotate", "demo")
	if got := batches() - before; got != 3 {
		t.Errorf("a rotation wrote %d batches to the shared chain, want 3 (started, the steps, the last save's record)", got)
	}
	tail := mustRotorEnv(t, dir, env, "audit", "tail", "-n", "0", "-o", "json").stdout
	if n := strings.Count(tail, `"action":"store.save"`); n < 5 {
		t.Errorf("the chain holds %d store.save records after two rotations, want at least 5 each", n)
	}
	mustRotorEnv(t, dir, env, "audit", "verify")
}
