package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/keyring"
)

// TestPushFromTheCLI: a rotation made by `rotor rotate` in another
// process (cron, CI) reaches an application watching `rotor serve`,
// although the server polls only once an hour (watch_interval: 1h):
//
//   - on the file store, rotor serve sees the store's file change;
//   - on Vault, which cannot tell, the CLI sends notify (server.notify)
//     and the server reads the new set from Vault.
//
// The wait is for the condition, bounded; nothing is timed.
func TestPushFromTheCLI(t *testing.T) {
	t.Run("file store", func(t *testing.T) { testPushFromTheCLI(t, "") })
	t.Run("vault store, notify", func(t *testing.T) {
		v := vaulttest.Start(t)
		tokenFile := filepath.Join(t.TempDir(), "vault-token")
		if err := os.WriteFile(tokenFile, []byte(v.Token), 0o600); err != nil {
			t.Fatal(err)
		}
		testPushFromTheCLI(t, fmt.Sprintf("  type: vault\n  vault:\n    address: %s\n    prefix: pushtest\n    auth: {method: token, token_file: %q}\n", v.Addr, tokenFile))
	})
}

// testPushFromTheCLI runs the scenario on the file store, or on the store
// block storeBlock (the lines under "store:") when it is not empty.
func testPushFromTheCLI(t *testing.T, storeBlock string) {
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
	cfg := defaultConfig
	if storeBlock != "" {
		cfg = strings.Replace(cfg, "store:\n  type: file                     # embedded default: age-encrypted files\n  file:\n    dir: .rotor/store\n    identity: .rotor/identity.txt  # age identity (0600); back it up\n", "store:\n"+storeBlock, 1)
		if cfg == defaultConfig {
			t.Fatal("setup: the store block of the default config changed")
		}
	}
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
