package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	rotorapi "github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/vaulttest"
)

// TestViewerStatusAndHistoryOnVault: with a Vault token holding only the
// policy `rotor policy vault --role viewer` prints, which reads metadata
// and no value, rotor status and rotor history still show every key id,
// from the description rotor keeps in the KV metadata.
func TestViewerStatusAndHistoryOnVault(t *testing.T) {
	v := vaulttest.Start(t)
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	tokenFile := filepath.Join(dir, "vault-token")
	storeBlock := func() string {
		return fmt.Sprintf("store:\n  type: vault\n  vault:\n    address: %s\n    auth: {method: token, token_file: %q}\n", v.Addr, tokenFile)
	}
	cfg := strings.Replace(defaultConfig, "store:\n  type: file                     # embedded default: age-encrypted files\n  file:\n    dir: .rotor/store\n    identity: .rotor/identity.txt  # age identity (0600); back it up\n", storeBlock(), 1)
	if err := os.WriteFile(filepath.Join(dir, "rotor.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	setToken := func(tok string) {
		t.Helper()
		if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	setToken(v.Token)
	var outs []procResult
	for range 2 {
		outs = append(outs, mustRotor(t, dir, "rotate", "demo"))
	}
	cur := strings.TrimSpace(mustRotor(t, dir, "get", "demo").stdout)
	prev := strings.TrimSpace(mustRotor(t, dir, "get", "demo", "--slot", "previous").stdout)
	values := []string{reveal(t, dir, "current"), reveal(t, dir, "previous")}

	hcl := mustRotor(t, dir, "policy", "vault", "--role", "viewer").stdout
	if err := v.Client.Sys().PutPolicyWithContext(t.Context(), "rotor-viewer", hcl); err != nil {
		t.Fatal(err)
	}
	res, err := v.Client.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{"rotor-viewer"}})
	if err != nil {
		t.Fatal(err)
	}
	setToken(res.Auth.ClientToken)

	if r := rotor(t, dir, nil, "get", "demo", "--reveal"); r.code == 0 {
		t.Fatal("setup: the viewer token reads values")
	}
	st := mustRotor(t, dir, "status", "demo", "-o", "json")
	var s statusJSON
	if err := json.Unmarshal([]byte(st.stdout), &s); err != nil {
		t.Fatal(err)
	}
	if s.Current == nil || s.Current.KeyID != cur || s.Previous == nil || s.Previous.KeyID != prev {
		t.Fatalf("viewer status = %s, want current %s and previous %s", st.stdout, cur, prev)
	}
	h := mustRotor(t, dir, "history", "demo", "-o", "json")
	var doc rotorapi.History
	if err := json.Unmarshal([]byte(h.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	hist := doc.Versions
	last := hist[len(hist)-1]
	if len(hist) < 6 || last.CurrentKeyID != cur || last.PreviousKeyID != prev || last.WrittenBy == "" {
		t.Fatalf("viewer history = %s, want every version of two rotations (three each, start, create and finish, for a secret without hooks), the last with %s and %s", h.stdout, cur, prev)
	}
	outs = append(outs, st, h)
	leakCheck(t, dir, outs, values...)
}
