package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/internal/procgroup"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/keyring"
)

// The Vault Agent files shipped in deploy/vault-agent.
const (
	agentDir      = "../../deploy/vault-agent"
	agentConfig   = "agent.hcl"
	agentTemplate = "clerk-secret-key.env.ctmpl"
	agentRendered = "clerk-secret-key.env"
	// agentInterval is static_secret_render_interval in agent.hcl; the
	// test shortens it, so that a re-render does not take 30 s.
	agentInterval = `static_secret_render_interval = "30s"`
)

// TestVaultAgentTemplate runs the pinned Vault binary's own `vault agent`
// with the shipped deploy/vault-agent config and template, logged in by
// AppRole with a token that carries only the app policy rotor prints, and
// checks that the file it renders is rotor's env-file format
// (keyring.EnvFileSource reads it) holding exactly the keys rotor stored:
// at first (with an expired previous key left out, as rotor run leaves it
// out), after rotor rotate, and after rotor rollback. Vault Agent
// templates: https://developer.hashicorp.com/vault/docs/agent-and-proxy/agent/template
func TestVaultAgentTemplate(t *testing.T) {
	v := vaulttest.Start(t)
	bin, err := vaulttest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	config := func(grace string) {
		t.Helper()
		cfg := fmt.Sprintf(`store:
  type: vault
  vault:
    address: %s
audit:
  salt_file: .rotor/audit.salt
  local: true
defaults: {every: 720h, grace: %s, allow_short_intervals: true}
secrets:
  - name: clerk-secret-key
    provider: random
    random: {bytes: 32, encoding: base64url, prefix: sk_test_}
`, v.Addr, grace)
		if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := audit.LoadOrCreateSalt(filepath.Join(dir, ".rotor", "audit.salt")); err != nil {
		t.Fatal(err)
	}
	env := []string{"VAULT_TOKEN=" + v.Token}
	var outs []procResult
	rot := func(extra []string, args ...string) {
		t.Helper()
		outs = append(outs, mustRotorEnv(t, dir, append(env, extra...), args...))
	}
	keyID := func(slot string) string {
		t.Helper()
		r := rotor(t, dir, env, "get", "clerk-secret-key", "--slot", slot)
		outs = append(outs, r)
		return strings.TrimSpace(r.stdout)
	}

	// Two rotations with a grace period of a second, then the wall clock
	// passes the previous key's expiry: the template must leave it out.
	config("1s")
	rot(nil, "rotate", "clerk-secret-key")
	rot(nil, "rotate", "clerk-secret-key")
	k1, k2 := keyID("previous"), keyID("current")
	if k1 == "" || k2 == "" {
		t.Fatalf("setup: previous %q, current %q after two rotations", k1, k2)
	}
	kv, err := v.Client.KVv2("secret").Get(t.Context(), "rotor/clerk-secret-key")
	if err != nil {
		t.Fatal(err)
	}
	expires, err := time.Parse(time.RFC3339, kv.Data["previous_expires_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the previous key's grace period to end", func() bool { return time.Now().After(expires) })
	config("24h")

	// The app's AppRole: a token with the app policy and nothing else.
	ctx := t.Context()
	hcl := mustRotorEnv(t, dir, env, "policy", "vault", "--role", "app").stdout
	if err := v.Client.Sys().PutPolicyWithContext(ctx, "rotor-app", hcl); err != nil {
		t.Fatal(err)
	}
	if err := v.Client.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Client.Logical().WriteWithContext(ctx, "auth/approle/role/app", map[string]any{"token_policies": "rotor-app"}); err != nil {
		t.Fatal(err)
	}
	roleID, err := v.Client.Logical().ReadWithContext(ctx, "auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID, err := v.Client.Logical().WriteWithContext(ctx, "auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	agent := t.TempDir()
	writeFile(t, filepath.Join(agent, "role-id"), roleID.Data["role_id"].(string))
	writeFile(t, filepath.Join(agent, "secret-id"), secretID.Data["secret_id"].(string))
	writeFile(t, filepath.Join(agent, agentTemplate), string(readTestFile(t, filepath.Join(agentDir, agentTemplate))))
	conf := string(readTestFile(t, filepath.Join(agentDir, agentConfig)))
	if !strings.Contains(conf, agentInterval) {
		t.Fatalf("%s does not set %s; update agentInterval", agentConfig, agentInterval)
	}
	writeFile(t, filepath.Join(agent, agentConfig), strings.Replace(conf, agentInterval, `static_secret_render_interval = "200ms"`, 1))

	cmd := exec.Command(bin, "agent", "-config="+agentConfig)
	cmd.Dir = agent
	cmd.Env = append(os.Environ(), "VAULT_ADDR="+v.Addr, "VAULT_TOKEN=")
	proc, err := procgroup.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Stop(syscall.SIGTERM, 10*time.Second) })

	rendered := filepath.Join(agent, agentRendered)
	src := keyring.EnvFileSource(rendered, "CLERK_SECRET_KEY")
	// expect waits until the rendered file holds current and previous.
	expect := func(what, current, previous string) {
		t.Helper()
		var last string
		waitFor(t, what+" rendered", func() bool {
			select {
			case <-proc.Exited():
				t.Fatalf("vault agent exited:\n%s", proc.Log())
			default:
			}
			s, err := src.Load(ctx)
			if err != nil {
				last = err.Error()
				return false
			}
			prev := ""
			if s.Previous != nil {
				prev = s.Previous.ID
			}
			last = fmt.Sprintf("current %s, previous %q", s.Current.ID, prev)
			return s.Current.ID == current && prev == previous
		})
		t.Logf("%s: %s", what, last)
	}
	expect("the first set, without the expired previous key", k2, "")
	if fi, err := os.Stat(rendered); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rendered file: %v, mode %v; want 0600", err, fi.Mode())
	}
	vars, err := keyring.ParseEnvFile(readTestFile(t, rendered))
	if err != nil {
		t.Fatal(err)
	}
	// The same variables rotor run writes for the set (keyring.EnvVars).
	set, err := src.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range keyring.EnvVars("CLERK_SECRET_KEY", set) {
		name, value, _ := strings.Cut(kv, "=")
		if got, ok := vars[name]; !ok || got != value {
			t.Errorf("rendered file: %s missing or not what rotor run writes", name)
		}
	}
	if len(vars) != len(keyring.EnvVars("CLERK_SECRET_KEY", set)) {
		t.Errorf("rendered file has %d variables, want the %d rotor run writes", len(vars), len(keyring.EnvVars("CLERK_SECRET_KEY", set)))
	}
	if vars["CLERK_SECRET_KEY"] != vars["CLERK_SECRET_KEY_PRIMARY"] || !strings.HasPrefix(vars["CLERK_SECRET_KEY"], "sk_test_") {
		t.Errorf("CLERK_SECRET_KEY and _PRIMARY differ or are not the key")
	}

	rot(nil, "rotate", "clerk-secret-key")
	k3 := keyID("current")
	expect("the set after rotate", k3, k2)

	rot(nil, "rollback", "clerk-secret-key")
	if got := keyID("current"); got != k2 {
		t.Fatalf("setup: current after rollback is %s, want %s", got, k2)
	}
	expect("the set after rollback", k2, keyID("previous"))

	// No key value in what rotor printed, in the audit log, or in the
	// agent's log.
	outs = append(outs, procResult{stdout: proc.Log()})
	leakCheck(t, dir, outs, vars["CLERK_SECRET_KEY"])
}

// syncBuffer is a bytes.Buffer a child process writes while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
