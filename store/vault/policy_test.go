package vault

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
)

// putPolicy loads Policy(role) for prefix into srv under a unique name and
// returns the name.
func putPolicy(t *testing.T, role authz.Role, prefix string) string {
	t.Helper()
	hcl, err := Policy(role, "secret", prefix)
	if err != nil {
		t.Fatal(err)
	}
	name := uniqueName("rotor-" + string(role) + "-")
	if err := srv.Client.Sys().PutPolicyWithContext(t.Context(), name, hcl); err != nil {
		t.Fatalf("Vault refused the %s policy: %v\n%s", role, err, hcl)
	}
	return name
}

// target is where an action runs: in is a fresh path under the policy's
// prefix holding secret x with versions 1 and 2; out is a path outside the
// prefix holding a secret x too.
type target struct{ in, out string }

// action is one thing a token may try on a target.
type action struct {
	name string
	do   func(ctx context.Context, c *api.Client, p target) error
}

func write(ctx context.Context, c *api.Client, path string, body map[string]any) error {
	_, err := c.Logical().WriteWithContext(ctx, path, body)
	return err
}

var actions = []action{
	{"read value", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+p.in+"/x")
		return err
	}},
	{"read old version", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ReadWithDataWithContext(ctx, "secret/data/"+p.in+"/x", map[string][]string{"version": {"1"}})
		return err
	}},
	{"update value", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/data/"+p.in+"/x", map[string]any{"data": map[string]any{"current": "v3"}, "options": map[string]any{"cas": 2}})
	}},
	{"create secret", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/data/"+p.in+"/new", map[string]any{"data": map[string]any{"current": "v1"}, "options": map[string]any{"cas": 0}})
	}},
	{"list secrets", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ListWithContext(ctx, "secret/metadata/"+p.in)
		return err
	}},
	{"read metadata", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/metadata/"+p.in+"/x")
		return err
	}},
	{"change metadata settings", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/metadata/"+p.in+"/x", map[string]any{"max_versions": 3})
	}},
	{"describe versions in metadata", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().JSONMergePatch(ctx, "secret/metadata/"+p.in+"/x", map[string]any{
			"max_versions": 100, "custom_metadata": map[string]any{"rotor_v2": `{"c":"0123456789abcdef"}`}})
		return err
	}},
	{"patch other metadata settings", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().JSONMergePatch(ctx, "secret/metadata/"+p.in+"/x", map[string]any{"delete_version_after": "1s"})
		return err
	}},
	{"soft-delete latest", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().DeleteWithContext(ctx, "secret/data/"+p.in+"/x")
		return err
	}},
	{"delete versions", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/delete/"+p.in+"/x", map[string]any{"versions": []int{1}})
	}},
	{"undelete versions", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/undelete/"+p.in+"/x", map[string]any{"versions": []int{1}})
	}},
	{"destroy versions", func(ctx context.Context, c *api.Client, p target) error {
		return write(ctx, c, "secret/destroy/"+p.in+"/x", map[string]any{"versions": []int{1}})
	}},
	{"delete metadata and all versions", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().DeleteWithContext(ctx, "secret/metadata/"+p.in+"/x")
		return err
	}},
	{"read value outside prefix", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+p.out+"/x")
		return err
	}},
	{"list outside prefix", func(ctx context.Context, c *api.Client, p target) error {
		_, err := c.Logical().ListWithContext(ctx, "secret/metadata")
		return err
	}},
	{"write policy", func(ctx context.Context, c *api.Client, p target) error {
		return c.Sys().PutPolicyWithContext(ctx, "escalate-"+strings.ReplaceAll(p.in, "/", "-"), `path "*" { capabilities = ["sudo"] }`)
	}},
}

// TestPolicyMatrix loads each role's policy into Vault, binds a token to
// it and tries every action: what the role's row allows must succeed, and
// everything else must be refused by Vault with 403.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role    authz.Role
		allowed []string
		reason  string
	}{
		{authz.RoleApp, []string{"read value", "read old version", "read metadata"},
			"apps read values and whether they changed, nothing else"},
		{authz.RoleViewer, []string{"list secrets", "read metadata"},
			"viewers see which secrets and versions exist and their key ids, never a value"},
		{authz.RoleCI, []string{"read value", "read old version", "update value", "create secret", "list secrets", "read metadata",
			"describe versions in metadata"},
			"CI rotates, rolls back, stages and revokes: all writes of new versions, and their description"},
		{authz.RoleAdmin, []string{"read value", "read old version", "update value", "create secret", "list secrets", "read metadata",
			"change metadata settings", "describe versions in metadata", "patch other metadata settings",
			"soft-delete latest", "delete versions", "undelete versions", "destroy versions", "delete metadata and all versions"},
			"admins also delete, destroy and change settings"},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			t.Parallel()
			for _, a := range tc.allowed {
				if !slices.ContainsFunc(actions, func(x action) bool { return x.name == a }) {
					t.Fatalf("allowed action %q is not in the action table", a)
				}
			}
			prefix := uniqueName("rotortest/")
			token := createToken(t, &api.TokenCreateRequest{Policies: []string{putPolicy(t, tc.role, prefix)}})
			c, err := srv.NewClient(token)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range actions {
				t.Run(a.name, func(t *testing.T) {
					ctx := t.Context()
					// A fresh secret with two versions per action, so
					// destructive actions do not affect the others.
					id := uniqueName("case-")
					p := target{in: prefix + "/" + id, out: prefix + "-other/" + id}
					seedActionSecret(t, p)
					err := a.do(ctx, c, p)
					want := slices.Contains(tc.allowed, a.name)
					switch {
					case want && err != nil:
						t.Errorf("%s may %s (%s), but Vault refused: %v", tc.role, a.name, tc.reason, err)
					case !want && err == nil:
						t.Errorf("%s must not %s (%s), but Vault allowed it", tc.role, a.name, tc.reason)
					case !want && StatusCode(err) != http.StatusForbidden:
						t.Errorf("%s %s: err = %v, want a 403 from Vault", tc.role, a.name, err)
					}
				})
			}
		})
	}
}

// seedActionSecret writes versions 1 and 2 of p.in/x, and p.out/x, as
// root.
func seedActionSecret(t *testing.T, p target) {
	t.Helper()
	kv := srv.Client.KVv2("secret")
	for _, p := range []string{p.in + "/x", p.in + "/x", p.out + "/x"} {
		if _, err := kv.Put(t.Context(), p, map[string]any{"current": "value"}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestPolicyCoversStore runs the store itself with each role's token: ci
// and admin can do everything the store does, viewer can list but not
// load, app can load but not save. This proves the policies fit the calls
// the store really makes, not just the ones the matrix tries.
func TestPolicyCoversStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	seed := rootStore(t)
	sec := sampleSecret("shared")
	v, err := seed.Save(ctx, sec, store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Two more versions, so that history has something to show.
	for range 2 {
		if v, err = seed.Save(ctx, sec, v); err != nil {
			t.Fatal(err)
		}
	}
	type can struct{ load, save, list, history, version, describe bool }
	tests := []struct {
		role authz.Role
		want can
	}{
		{authz.RoleAdmin, can{true, true, true, true, true, true}},
		{authz.RoleCI, can{true, true, true, true, true, true}},
		{authz.RoleApp, can{true, false, false, true, true, true}},
		{authz.RoleViewer, can{false, false, true, true, true, true}},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			cfg := tokenConfig(t, createToken(t, &api.TokenCreateRequest{Policies: []string{putPolicy(t, tc.role, seed.prefix)}}))
			cfg.Prefix = seed.prefix
			st := newStore(t, cfg)
			check := func(op string, want bool, err error) {
				t.Helper()
				switch {
				case want && err != nil:
					t.Errorf("%s with the %s policy: %v", op, tc.role, err)
				case !want && StatusCode(err) != http.StatusForbidden:
					t.Errorf("%s with the %s policy: err = %v, want a 403 from Vault", op, tc.role, err)
				}
				if err != nil {
					assertNoValue(t, op+" error", err.Error(), sec)
				}
			}
			_, _, err := st.Load(ctx, "shared")
			check("Load", tc.want.load, err)
			// Save a new secret so roles do not race on one version.
			mine := sampleSecret(uniqueName("by-"))
			saved, err := st.Save(ctx, mine, store.NoVersion)
			check("Save", tc.want.save, err)
			if err == nil {
				// The save described itself in the metadata: the
				// policy lets this role patch it.
				if _, dv, err := seed.Describe(ctx, mine.Name); err != nil || dv != saved {
					t.Errorf("after a save with the %s policy, the metadata describes version %q (%v), want %q", tc.role, dv, err, saved)
				}
			}
			_, err = st.List(ctx)
			check("List", tc.want.list, err)
			hist, err := st.History(ctx, "shared")
			check("History", tc.want.history, err)
			if err == nil && (len(hist) != 3 || hist[2].CurrentKeyID != sec.Current.ID || hist[2].WrittenBy == "") {
				t.Errorf("history with the %s policy = %+v, want 3 versions with key ids and writers", tc.role, hist)
			}
			_, err = st.Version(ctx, "shared")
			check("Version", tc.want.version, err)
			d, dv, err := st.Describe(ctx, "shared")
			check("Describe", tc.want.describe, err)
			if err == nil && (dv != v || d.Current == nil || d.Current.ID != sec.Current.ID || d.Current.Value != "") {
				t.Errorf("Describe with the %s policy = version %q, current %+v; want %q with the key id and no value", tc.role, dv, d.Current, v)
			}
		})
	}
	if _, gotV, err := seed.Load(ctx, "shared"); err != nil || gotV != v {
		t.Errorf("shared secret changed: version %q, err %v", gotV, err)
	}
}

func TestPolicyRejectsBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		role          authz.Role
		mount, prefix string
	}{
		{"unknown role", "root", "secret", "rotor"},
		{"glob in prefix", authz.RoleApp, "secret", "rotor/*"},
		{"plus in mount", authz.RoleApp, "sec+ret", "rotor"},
		{"quote breaks out of HCL string", authz.RoleApp, "secret", `rotor" {} path "x`},
		{"dot-dot segment", authz.RoleApp, "secret", "rotor/../other"},
		{"empty prefix", authz.RoleApp, "secret", ""},
	}
	for _, tc := range tests {
		if hcl, err := Policy(tc.role, tc.mount, tc.prefix); err == nil {
			t.Errorf("%s: Policy returned no error and\n%s", tc.name, hcl)
		}
	}
	if _, err := Policy(authz.RoleApp, "/secret/", "/rotor/"); err != nil {
		t.Errorf("surrounding slashes should be trimmed: %v", err)
	}
}
