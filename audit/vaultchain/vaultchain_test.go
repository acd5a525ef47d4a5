package vaultchain_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/audit/audittest"
	"github.com/rotor-dev/rotor/audit/vaultchain"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/internal/vaulttest"
	vaultstore "github.com/rotor-dev/rotor/store/vault"
)

// srv is the Vault dev server every test of the package shares; tests keep
// apart by prefix. Child processes started by the tests reach it through
// the environment instead of starting their own.
var srv *vaulttest.Server

const (
	addrEnv  = "ROTOR_VAULTCHAIN_ADDR"
	tokenEnv = "ROTOR_VAULTCHAIN_TOKEN"
)

func TestMain(m *testing.M) {
	if audittest.InChild() {
		os.Exit(m.Run())
	}
	s, stop, err := vaulttest.StartMain()
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit/vaultchain tests need a Vault server:", err)
		os.Exit(1)
	}
	srv = s
	code := m.Run()
	stop()
	os.Exit(code)
}

func uniqueName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func newBackend(t testing.TB, c *api.Client, prefix string) *vaultchain.Backend {
	t.Helper()
	b, err := vaultchain.New(vaultchain.Options{Client: c, Mount: "secret", Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newShared(t *testing.T, b audit.Backend) *audit.Shared {
	t.Helper()
	s, err := audit.NewShared(b, audittest.Salt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audit.Backend {
		return newBackend(t, srv.Client, uniqueName("rotortest/"))
	})
}

// tokenFor returns a token holding rotor's Vault policy for role over
// prefix, as `rotor policy vault` prints it.
func tokenFor(t *testing.T, role authz.Role, prefix string) *api.Client {
	t.Helper()
	hcl, err := vaultstore.Policy(role, "secret", prefix)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("rotor-" + string(role) + "-")
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), name, hcl); err != nil {
		t.Fatal(err)
	}
	return tokenWithPolicy(t, name)
}

func tokenWithPolicy(t *testing.T, policy string) *api.Client {
	t.Helper()
	res, err := srv.Client.Auth().Token().CreateWithContext(t.Context(), &api.TokenCreateRequest{Policies: []string{policy}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv.NewClient(res.Auth.ClientToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func statusCode(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// TestRolePolicies runs the chain with each role's token: ci and admin
// append and verify, viewer verifies but cannot append, app cannot read.
func TestRolePolicies(t *testing.T) {
	prefix := uniqueName("rotortest/")
	seed := newShared(t, newBackend(t, srv.Client, prefix))
	if _, err := seed.Append(t.Context(), audittest.Event("user:root", 0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		role           authz.Role
		append, verify bool
	}{
		{authz.RoleCI, true, true},
		{authz.RoleAdmin, true, true},
		{authz.RoleViewer, false, true},
		{authz.RoleApp, false, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			s := newShared(t, newBackend(t, tokenFor(t, tc.role, prefix), prefix))
			_, err := s.Append(t.Context(), audittest.Event("user:"+string(tc.role), 1))
			switch {
			case tc.append && err != nil:
				t.Errorf("%s cannot append: %v", tc.role, err)
			case !tc.append && statusCode(err) != http.StatusForbidden:
				t.Errorf("%s append = %v, want a 403 from Vault", tc.role, err)
			}
			_, err = s.Verify(t.Context())
			switch {
			case tc.verify && err != nil:
				t.Errorf("%s cannot verify: %v", tc.role, err)
			case !tc.verify && statusCode(err) != http.StatusForbidden:
				t.Errorf("%s verify = %v, want a 403 from Vault", tc.role, err)
			}
		})
	}
	rep, err := seed.Verify(t.Context())
	if err != nil || rep.Records != 3 {
		t.Fatalf("Verify = %+v, %v; want the seed record and the ci and admin ones", rep, err)
	}
}

// TestCheckpointPolicies: with the policies rotor prints, ci and admin
// write the checkpoint of the chain's saves; viewer cannot, and its
// Saves still answers, from a full read.
func TestCheckpointPolicies(t *testing.T) {
	tests := []struct {
		role  authz.Role
		write bool
	}{
		{authz.RoleCI, true},
		{authz.RoleAdmin, true},
		{authz.RoleViewer, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			prefix := uniqueName("rotortest/")
			root := newBackend(t, srv.Client, prefix)
			// About 400 KB of saves: a checkpoint is due after a full read.
			var es []audit.Event
			for i := range 1000 {
				es = append(es, audit.Event{Initiator: "user:root", Action: "store.save", Secret: fmt.Sprintf("s%d", i%50),
					Status: audit.StatusSucceeded, StoreVersion: uint64(i/50 + 1), StateDigest: strings.Repeat("d", 64)})
			}
			if _, err := newShared(t, root).AppendAll(t.Context(), es); err != nil {
				t.Fatal(err)
			}
			_, saves, err := newShared(t, newBackend(t, tokenFor(t, tc.role, prefix), prefix)).Saves().All(t.Context())
			if err != nil || len(saves) != 50 || saves["s0"].Version != 20 {
				t.Fatalf("%s: Saves.All = %d saves (s0 %+v), %v; want 50, s0 at version 20", tc.role, len(saves), saves["s0"], err)
			}
			_, _, err = root.Get(t.Context(), "checkpoint/head")
			switch {
			case tc.write && err != nil:
				t.Errorf("%s wrote no checkpoint: %v", tc.role, err)
			case !tc.write && !errors.Is(err, audit.ErrNotExist):
				t.Errorf("%s: checkpoint = %v, want none: the policy lets it write one", tc.role, err)
			}
		})
	}
}

// TestTamperWithoutSalt rewrites a record with a token that may write the
// KV mount but does not hold the salt: the chain no longer verifies, and
// Vault kept the original as an older version.
func TestTamperWithoutSalt(t *testing.T) {
	prefix := uniqueName("rotortest/")
	s := newShared(t, newBackend(t, srv.Client, prefix))
	for i := range 3 {
		if _, err := s.Append(t.Context(), audittest.Event("user:ana", i)); err != nil {
			t.Fatal(err)
		}
	}
	name := uniqueName("kv-writer-")
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), name, `path "secret/data/*" { capabilities = ["create", "read", "update"] }`); err != nil {
		t.Fatal(err)
	}
	writer := tokenWithPolicy(t, name)
	kv := writer.KVv2("secret")
	path := prefix + "/" + vaultchain.Dir + "/records/2"
	rec, err := kv.Get(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(rec.Data["v"].(string), "user:ana", "user:eve", 1)
	if _, err := kv.Put(t.Context(), path, map[string]any{"v": forged}); err != nil {
		t.Fatal(err)
	}
	fresh := newShared(t, newBackend(t, srv.Client, prefix))
	_, err = fresh.Verify(t.Context())
	var ce *audit.ChainError
	if !errors.As(err, &ce) || ce.Seq != 2 || !strings.Contains(ce.Reason, "modified or forged") {
		t.Fatalf("Verify after the forgery = %v, want a forged record at seq 2", err)
	}
}

// TestProcesses runs audittest's multi-process scenarios on the real
// Vault: writers in several processes extend one chain, and writers killed
// mid-append leave it verifiable.
func TestProcesses(t *testing.T) {
	env := []string{}
	if srv != nil {
		env = append(env, addrEnv+"="+srv.Addr, tokenEnv+"="+srv.Token)
	}
	audittest.RunProcesses(t, uniqueName("rotortest/"), audittest.Processes{
		Open: func(t testing.TB, prefix string) audit.Backend {
			if srv != nil {
				return newBackend(t, srv.Client, prefix)
			}
			c, err := api.NewClient(&api.Config{Address: os.Getenv(addrEnv)})
			if err != nil {
				t.Fatal(err)
			}
			c.SetToken(os.Getenv(tokenEnv))
			return newBackend(t, c, prefix)
		},
		Env: env,
	})
}
