package vault

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/authz"
)

// auditTarget is where an audit action runs: the chain under prefix, and a
// record key that only this action uses, seeded with one version.
type auditTarget struct{ prefix, record string }

var auditActions = []struct {
	name string
	do   func(ctx context.Context, c *api.Client, p auditTarget) error
}{
	{"read audit record", func(ctx context.Context, c *api.Client, p auditTarget) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+p.prefix+"/_audit/records/"+p.record)
		return err
	}},
	{"read audit head", func(ctx context.Context, c *api.Client, p auditTarget) error {
		_, err := c.Logical().ReadWithContext(ctx, "secret/data/"+p.prefix+"/_audit/head")
		return err
	}},
	{"append audit record", func(ctx context.Context, c *api.Client, p auditTarget) error {
		return write(ctx, c, "secret/data/"+p.prefix+"/_audit/records/"+p.record+"1", map[string]any{"data": map[string]any{"v": "x"}, "options": map[string]any{"cas": 0}})
	}},
	{"rewrite audit record", func(ctx context.Context, c *api.Client, p auditTarget) error {
		return write(ctx, c, "secret/data/"+p.prefix+"/_audit/records/"+p.record, map[string]any{"data": map[string]any{"v": "forged"}, "options": map[string]any{"cas": 1}})
	}},
	{"move audit head", func(ctx context.Context, c *api.Client, p auditTarget) error {
		return write(ctx, c, "secret/data/"+p.prefix+"/_audit/head", map[string]any{"data": map[string]any{"v": "moved"}})
	}},
	{"soft-delete audit record", func(ctx context.Context, c *api.Client, p auditTarget) error {
		_, err := c.Logical().DeleteWithContext(ctx, "secret/data/"+p.prefix+"/_audit/records/"+p.record)
		return err
	}},
	{"delete audit record versions", func(ctx context.Context, c *api.Client, p auditTarget) error {
		return write(ctx, c, "secret/delete/"+p.prefix+"/_audit/records/"+p.record, map[string]any{"versions": []int{1}})
	}},
	{"destroy audit record", func(ctx context.Context, c *api.Client, p auditTarget) error {
		return write(ctx, c, "secret/destroy/"+p.prefix+"/_audit/records/"+p.record, map[string]any{"versions": []int{1}})
	}},
	{"delete audit record metadata", func(ctx context.Context, c *api.Client, p auditTarget) error {
		_, err := c.Logical().DeleteWithContext(ctx, "secret/metadata/"+p.prefix+"/_audit/records/"+p.record)
		return err
	}},
}

// TestPolicyAuditMatrix tries every audit chain action with each role's
// token: ci and admin append and move the head, viewer reads, app has no
// access, and nobody rewrites, deletes or destroys a record.
func TestPolicyAuditMatrix(t *testing.T) {
	t.Parallel()
	reading := []string{"read audit record", "read audit head"}
	writing := append(slices.Clone(reading), "append audit record", "move audit head")
	tests := []struct {
		role    authz.Role
		allowed []string
	}{
		{authz.RoleApp, nil},
		{authz.RoleViewer, reading},
		{authz.RoleCI, writing},
		{authz.RoleAdmin, writing},
	}
	for _, tc := range tests {
		t.Run(string(tc.role), func(t *testing.T) {
			t.Parallel()
			prefix := uniqueName("rotortest/")
			token := createToken(t, &api.TokenCreateRequest{Policies: []string{putPolicy(t, tc.role, prefix)}})
			c, err := srv.NewClient(token)
			if err != nil {
				t.Fatal(err)
			}
			kv := srv.Client.KVv2("secret")
			if _, err := kv.Put(t.Context(), prefix+"/_audit/head", map[string]any{"v": "head"}); err != nil {
				t.Fatal(err)
			}
			for _, a := range auditActions {
				t.Run(a.name, func(t *testing.T) {
					p := auditTarget{prefix: prefix, record: uniqueName("")}
					if _, err := kv.Put(t.Context(), prefix+"/_audit/records/"+p.record, map[string]any{"v": "record"}); err != nil {
						t.Fatal(err)
					}
					err := a.do(t.Context(), c, p)
					want := slices.Contains(tc.allowed, a.name)
					switch {
					case want && err != nil:
						t.Errorf("%s may %s, but Vault refused: %v", tc.role, a.name, err)
					case !want && err == nil:
						t.Errorf("%s must not %s, but Vault allowed it", tc.role, a.name)
					case !want && StatusCode(err) != http.StatusForbidden:
						t.Errorf("%s %s: err = %v, want a 403 from Vault", tc.role, a.name, err)
					}
				})
			}
		})
	}
}
