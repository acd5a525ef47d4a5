package config

import (
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/store/vault"
)

// parseVaultBlock parses a config whose store.vault block is block
// (indented by four spaces per level under "vault:").
func parseVaultBlock(t *testing.T, block string) (*Config, error) {
	t.Helper()
	doc := "store:\n  type: vault\n  vault:\n" + block + "secrets:\n  - name: k\n    provider: random\n"
	return Parse([]byte(doc), "/etc/rotor")
}

func TestVaultStoreDefaults(t *testing.T) {
	c, err := parseVaultBlock(t, "    address: https://vault.example.com:8200\n")
	if err != nil {
		t.Fatal(err)
	}
	v := c.Store.Vault
	if v.Mount != "secret" || v.Prefix != "rotor" || v.Auth.Method != "token" {
		t.Errorf("defaults: mount %q prefix %q method %q, want secret, rotor, token", v.Mount, v.Prefix, v.Auth.Method)
	}
}

func TestVaultStoreAuthMethods(t *testing.T) {
	tests := []struct {
		name  string
		block string
		check func(t *testing.T, a vault.AuthOptions)
	}{
		{
			name:  "approle defaults its mount",
			block: "    auth:\n      method: approle\n      role_id: r-1\n      secret_id_file: /run/secret-id\n",
			check: func(t *testing.T, a vault.AuthOptions) {
				if a.Mount != "approle" {
					t.Errorf("mount = %q, want approle", a.Mount)
				}
			},
		},
		{
			name:  "jwt from GitHub Actions",
			block: "    auth:\n      method: jwt\n      mount: /github/\n      role: ci\n      audience: https://vault.example.com\n",
			check: func(t *testing.T, a vault.AuthOptions) {
				if a.Mount != "github" {
					t.Errorf("mount = %q, want slashes trimmed: github", a.Mount)
				}
			},
		},
		{
			name:  "kubernetes defaults the service-account token",
			block: "    auth:\n      method: kubernetes\n      role: rotor\n",
			check: func(t *testing.T, a vault.AuthOptions) {
				if a.JWTFile != vault.DefaultKubernetesJWTFile {
					t.Errorf("jwt_file = %q, want %q", a.JWTFile, vault.DefaultKubernetesJWTFile)
				}
			},
		},
		{
			name:  "token file",
			block: "    auth:\n      token_file: /run/vault-token\n",
			check: func(t *testing.T, a vault.AuthOptions) {
				if a.Method != "token" {
					t.Errorf("method = %q, want token", a.Method)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseVaultBlock(t, tc.block)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c.Store.Vault.Auth)
		})
	}
}

func TestVaultStoreValidation(t *testing.T) {
	tests := []struct {
		name   string
		block  string
		want   string // substring of the error, with its location
		reason string
	}{
		{"unknown method", "    auth:\n      method: ldap\n", "store.vault.auth.method: unknown auth method \"ldap\"",
			"only the four documented methods are supported"},
		{"approle without role_id", "    auth:\n      method: approle\n", "store.vault.auth.role_id: auth method approle needs a role_id",
			"AppRole logs in with role_id + secret_id"},
		{"jwt without role", "    auth:\n      method: jwt\n", "store.vault.auth.role: auth method jwt needs",
			"the Vault role is part of every JWT login"},
		{"kubernetes without role", "    auth:\n      method: kubernetes\n", "store.vault.auth.role: auth method kubernetes needs",
			"the Vault role is part of every Kubernetes login"},
		{"jwt file and audience", "    auth:\n      method: jwt\n      role: ci\n      jwt_file: /t\n      audience: a\n", "store.vault.auth.audience:",
			"an audience only applies to tokens rotor requests from GitHub"},
		{"field of another method", "    auth:\n      method: token\n      role_id: r\n", "store.vault.auth.role_id: role_id is not used by auth method token",
			"a misplaced field is a misunderstanding worth reporting"},
		{"mount on token", "    auth:\n      mount: tok\n", "store.vault.auth.mount: mount is not used by auth method token",
			"token auth does not log in"},
		{"glob in prefix", "    prefix: rotor/*\n", "store.vault.prefix: invalid prefix",
			"the prefix is pasted into ACL policy paths"},
		{"quote in mount", "    mount: 'se\"cret'\n", "store.vault.mount: invalid mount",
			"the mount is pasted into ACL policy strings"},
		{"dot-dot in prefix", "    prefix: a/../b\n", "store.vault.prefix: invalid prefix",
			"paths must not climb out of the prefix"},
		{"address without scheme", "    address: vault.example.com:8200\n", "store.vault.address: invalid address",
			"the client needs a URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseVaultBlock(t, tc.block)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q (%s)", err, tc.want, tc.reason)
			}
			if !strings.Contains(err.Error(), "line ") {
				t.Errorf("error %q has no line number", err)
			}
		})
	}
}

func TestVaultStoreResolvePaths(t *testing.T) {
	v := vault.Options{Auth: vault.AuthOptions{TokenFile: "tok", SecretIDFile: "/abs/sid", JWTFile: "sub/jwt"}}.ResolvePaths("/etc/rotor")
	if v.Auth.TokenFile != "/etc/rotor/tok" || v.Auth.SecretIDFile != "/abs/sid" || v.Auth.JWTFile != "/etc/rotor/sub/jwt" {
		t.Errorf("resolved paths: %+v", v.Auth)
	}
	c, err := parseVaultBlock(t, "    auth:\n      token_file: tok\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Store.Vault.Auth.TokenFile; got != "/etc/rotor/tok" {
		t.Errorf("token_file = %q, want it resolved against the config directory", got)
	}
}
