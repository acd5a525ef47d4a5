package vaulttest

import (
	"os"
	"strings"
	"testing"
)

// TestVersionMatchesToolsModule keeps Version and the pinned Vault build in
// internal/tools/vault in step: the cache path is derived from both.
func TestVersionMatchesToolsModule(t *testing.T) {
	b, err := os.ReadFile("../tools/vault/go.mod")
	if err != nil {
		t.Fatal(err)
	}
	var pinned string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == "require" && f[1] == "github.com/hashicorp/vault" {
			pinned = f[2]
		}
	}
	if pinned != Version {
		t.Fatalf("internal/tools/vault pins vault %q, vaulttest.Version is %q", pinned, Version)
	}
}

// TestStart starts a server, checks it answers as root and serves KV v2 at
// secret/, and that Stop ends the process.
func TestStart(t *testing.T) {
	s := Start(t)
	ctx := t.Context()
	if _, err := s.Client.KVv2("secret").Put(ctx, "probe", map[string]any{"k": "v"}); err != nil {
		t.Fatalf("write to secret/ as root: %v", err)
	}
	anon, err := s.NewClient("")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.KVv2("secret").Get(ctx, "probe"); err == nil {
		t.Fatal("read without a token succeeded")
	}
	s.Stop()
	select {
	case <-s.proc.Exited():
	default:
		t.Fatal("Stop returned before the process exited")
	}
	if _, err := s.Client.Sys().HealthWithContext(ctx); err == nil {
		t.Fatal("server still answers after Stop")
	}
	s.Stop() // idempotent; t.Cleanup calls it again too
}

// TestMissingBinaryFailsWithBuildHint: without a binary, the error tells
// how to build one rather than letting tests skip.
func TestMissingBinaryFailsWithBuildHint(t *testing.T) {
	t.Setenv("VAULT_BIN", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("ROTOR_CACHE", t.TempDir())
	_, err := Binary()
	if err == nil {
		t.Fatal("Binary found a vault in empty directories")
	}
	if !strings.Contains(err.Error(), "internal/tools/vault/build.sh") {
		t.Errorf("error %q does not say how to build vault", err)
	}
	_, _, err = StartMain()
	if err == nil || !strings.Contains(err.Error(), "build.sh") {
		t.Errorf("StartMain: err = %v, want the build hint", err)
	}
}
