package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/internal/dynamofake"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/keyring"
)

// TestPushFromTheCLI: a rotation made by `rotor rotate` in another
// process (cron, CI) reaches an application watching `rotor serve`,
// although the server polls only once an hour (watch_interval: 1h):
//
//   - on the file store, rotor serve sees the store's file change;
//   - on Vault and AWS Secrets Manager, which cannot tell, the CLI sends
//     notify (server.notify) and the server reads the new set from the
//     store (on AWS through the version read, DescribeSecret).
//
// The wait is for the condition, bounded; nothing is timed.
func TestPushFromTheCLI(t *testing.T) {
	t.Run("file store", func(t *testing.T) { testPushFromTheCLI(t, "", "") })
	t.Run("vault store, notify", func(t *testing.T) {
		v := vaulttest.Start(t)
		tokenFile := filepath.Join(t.TempDir(), "vault-token")
		if err := os.WriteFile(tokenFile, []byte(v.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		testPushFromTheCLI(t, fmt.Sprintf("  type: vault\n  vault:\n    address: %s\n    prefix: pushtest\n    auth: {method: token, token_file: %q}\n", v.Addr, tokenFile), "")
	})
	t.Run("aws store, notify", func(t *testing.T) {
		_, storeBlock, auditLines := awsEmulators(t)
		testPushFromTheCLI(t, storeBlock, auditLines)
	})
}

// awsEmulators starts the Secrets Manager and DynamoDB emulators, with the
// audit table, and sets the AWS environment for rotor's processes; it
// returns the Secrets Manager emulator, the store block on it and the
// audit lines for the table.
func awsEmulators(t *testing.T) (sm *awsfake.Server, storeBlock, auditLines string) {
	t.Helper()
	sm = awsfake.Start(t, awsfake.Options{})
	db := dynamofake.Start(t)
	db.CreateTable("rotor-audit", "pk")
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"} {
		t.Setenv(k, v)
	}
	return sm, fmt.Sprintf("  type: awssm\n  awssm:\n    region: us-east-1\n    endpoint: %s\n", sm.URL()), "  endpoint: " + db.URL() + "\n"
}

// TestServeAWSPollsWithoutValues: rotor serve over AWS Secrets Manager
// polls a watched secret that does not change with DescribeSecret alone
// (awssm.Store.Version): however many polls and watchers, no
// GetSecretValue, so no secret value is decrypted at AWS's side. The
// server polls every 5ms; the wait is for a count of polls, bounded.
func TestServeAWSPollsWithoutValues(t *testing.T) {
	sm, storeBlock, auditLines := awsEmulators(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	app, err := authz.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfigOn(t, storeBlock, auditLines)
	cfg += "server:\n  watch_interval: 5ms\n  tokens:\n    - {name: web, role: app, secrets: [demo], hash: " + authz.HashToken(app) + "}\n"
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRotor(t, dir, "rotate", "demo")
	base, _, logs := startDaemon(t, dir, "serve")
	for range 4 {
		w, err := keyring.NewWatcher(base+"/v1/watch/demo", app)
		if err != nil {
			t.Fatal(err)
		}
		k, err := keyring.New(t.Context(), w)
		if err != nil {
			t.Fatalf("first set from the watch stream: %v\n%s", err, logs)
		}
		go w.Run(t.Context(), k)
	}
	sm.ResetCalls()
	const polls = 20
	waitFor(t, fmt.Sprintf("%d polls", polls), func() bool { return sm.Count("DescribeSecret", "rotor/demo") >= polls })
	for _, c := range sm.Calls() {
		if c.Operation != "DescribeSecret" {
			t.Fatalf("polling an unchanged secret called %s on %s\nserver log:\n%s", c.Operation, c.Secret, logs)
		}
	}
}

// defaultConfigOn is the default config with its store block replaced by
// storeBlock (the lines under "store:"; the file store when empty) and
// auditLines added to its audit block.
func defaultConfigOn(t *testing.T, storeBlock, auditLines string) string {
	t.Helper()
	cfg := defaultConfig
	if storeBlock != "" {
		cfg = strings.Replace(cfg, "store:\n  type: file                     # embedded default: age-encrypted files\n  file:\n    dir: .rotor/store\n    identity: .rotor/identity.txt  # age identity (0600); back it up\n", "store:\n"+storeBlock, 1)
		if cfg == defaultConfig {
			t.Fatal("setup: the store block of the default config changed")
		}
	}
	return strings.Replace(cfg, "\naudit:\n", "\naudit:\n"+auditLines, 1)
}

// testPushFromTheCLI runs the scenario on the file store, or on the store
// block storeBlock (the lines under "store:") when it is not empty, with
// auditLines added to the audit block.
func testPushFromTheCLI(t *testing.T, storeBlock, auditLines string) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mk := func() string {
		tok, err := authz.NewToken()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ci, app := mk(), mk()
	cfg := defaultConfigOn(t, storeBlock, auditLines)
	cfg += "server:\n  watch_interval: 1h\n  tokens:\n" +
		"    - {name: deploy-bot, role: ci, hash: " + authz.HashToken(ci) + "}\n" +
		"    - {name: web, role: app, secrets: [demo], hash: " + authz.HashToken(app) + "}\n"
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("rotor.yaml", cfg)
	mustRotor(t, dir, "rotate", "demo")

	base, _, logs := startDaemon(t, dir, "serve")
	w, err := keyring.NewWatcher(base+"/v1/watch/demo", app)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keyring.New(t.Context(), w)
	if err != nil {
		t.Fatalf("first set from the watch stream: %v\n%s", err, logs)
	}
	go w.Run(t.Context(), k)
	first := k.Current().ID

	cli := "rotor.yaml"
	env := []string{}
	if storeBlock != "" {
		// The CLI's config names the server to notify and the token to
		// do it with.
		write("cli.yaml", cfg+"  notify:\n    urls: ["+base+"]\n")
		cli = "cli.yaml"
		env = append(env, "ROTOR_NOTIFY_TOKEN="+ci)
	}
	r := rotor(t, dir, env, "--config", cli, "rotate", "demo")
	if r.code != 0 || strings.Contains(r.stderr, "warning: notify") {
		t.Fatalf("rotate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	now := strings.TrimSpace(mustRotor(t, dir, "get", "demo").stdout)
	if now == first {
		t.Fatal("setup: the rotation did not change the current key")
	}
	deadline := time.Now().Add(30 * time.Second)
	for k.Current().ID != now {
		if time.Now().After(deadline) {
			t.Fatalf("the watcher still uses %s, not the key %s the CLI promoted\nserver log:\n%s", k.Current().ID, now, logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	set := k.Set()
	leakCheck(t, dir, []procResult{r, {stderr: logs.String()}}, set.Current.Value, set.Previous.Value)
}
