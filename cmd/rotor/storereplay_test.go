package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// TestVaultOldVersionPutBack is the replay of issue 12 item 3 on a real
// Vault, with the audit chain shared through it: somebody with write
// rights on the KV path makes an old version of the secret current again
// (reads version N and writes it as a new version, as `vault kv rollback`
// does). Every command that loads the secret refuses it with exit 5, and
// audit verify fails.
func TestVaultOldVersionPutBack(t *testing.T) {
	srv := vaulttest.Start(t)
	dir := t.TempDir()
	env, prefix := sharedChainDir(t, srv, dir)
	run := func(args ...string) procResult {
		t.Helper()
		r := rotor(t, dir, env, args...)
		if r.code != 0 {
			t.Fatalf("rotor %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		return r
	}
	run("rotate", "demo")
	meta, err := srv.Client.Logical().Read("secret/metadata/" + prefix + "/demo")
	if err != nil || meta == nil {
		t.Fatalf("read metadata: %v", err)
	}
	old, ok := meta.Data["current_version"].(json.Number)
	if !ok {
		t.Fatalf("current_version = %#v", meta.Data["current_version"])
	}
	run("rotate", "demo")
	run("revoke", "demo", "--force")
	if r := run("audit", "verify"); !strings.Contains(r.stdout, "store ok: 1 stored secrets") {
		t.Fatalf("audit verify before the replay:\n%s", r.stdout)
	}

	sec, err := srv.Client.Logical().ReadWithData("secret/data/"+prefix+"/demo", map[string][]string{"version": {old.String()}})
	if err != nil || sec == nil {
		t.Fatalf("read version %s: %v", old, err)
	}
	if _, err := srv.Client.Logical().Write("secret/data/"+prefix+"/demo", map[string]any{"data": sec.Data["data"]}); err != nil {
		t.Fatalf("put version %s back: %v", old, err)
	}

	for _, args := range [][]string{{"status", "demo"}, {"get", "demo"}, {"rotate", "demo"}, {"audit", "verify"}} {
		r := rotor(t, dir, env, args...)
		if r.code != 5 || !strings.Contains(r.stderr, "an older copy of the store was put back") {
			t.Errorf("rotor %s after an old version was put back: exit %d, want 5 naming the replay\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
}
