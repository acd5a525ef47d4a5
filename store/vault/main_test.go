package vault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/internal/vaulttest"
	"github.com/rotor-dev/rotor/store"
)

// srv is the Vault dev server shared by every test of the package. Tests
// keep apart by using their own path prefix, auth mounts and policies.
var srv *vaulttest.Server

func TestMain(m *testing.M) {
	s, stop, err := vaulttest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "store/vault tests need a Vault server:", err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

// uniqueName returns a random path-safe name with the given prefix.
func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// writeFile writes content to a new file in a test directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// tokenConfig is a store config for srv with its own prefix, logging in
// with token through a token file.
func tokenConfig(t *testing.T, token string) Options {
	t.Helper()
	return Options{
		Address: srv.Addr,
		Mount:   "secret",
		Prefix:  uniqueName("rotortest/"),
		Auth:    AuthOptions{Method: AuthToken, TokenFile: writeFile(t, "token", token+"\n")},
	}
}

// newStore opens cfg and closes the store when t ends.
func newStore(t *testing.T, cfg Options, opts ...Option) *Store {
	t.Helper()
	s, err := New(t.Context(), cfg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// rootStore is a store on srv as root, under a fresh prefix.
func rootStore(t *testing.T, opts ...Option) *Store {
	t.Helper()
	return newStore(t, tokenConfig(t, srv.Token), opts...)
}

// createToken makes a token with the given policies (plus default) and
// options, as root.
func createToken(t *testing.T, req *api.TokenCreateRequest) string {
	t.Helper()
	res, err := srv.Client.Auth().Token().CreateWithContext(t.Context(), req)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	return res.Auth.ClientToken
}

// sampleSecret is a secret with a value in every slot. Its values are
// unique, so tests can check they never leak.
func sampleSecret(name string) *store.Secret {
	k := func(slot string) *store.Key {
		return &store.Key{
			Value:  uniqueName("sk_test_" + slot + "_"),
			ID:     uniqueName("kid_" + slot + "_"),
			Source: store.SourceMinted,
		}
	}
	s := &store.Secret{Name: name, Current: k("current"), Previous: k("previous"), Next: k("next"), Pending: k("pending")}
	return s
}

// assertNoValue fails if text contains any value of s.
func assertNoValue(t *testing.T, what, text string, s *store.Secret) {
	t.Helper()
	for _, v := range s.Values() {
		if strings.Contains(text, v) {
			t.Errorf("%s contains a secret value: %s", what, strings.ReplaceAll(text, v, "<REDACTED>"))
		}
	}
}
