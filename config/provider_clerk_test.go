package config_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/provider/clerkmachine"
	"github.com/rotor-dev/rotor/provider/exec"
)

func parseSecret(t *testing.T, block string) (*config.Secret, error) {
	t.Helper()
	doc := "secrets:\n  - name: s\n" + block
	c, err := config.Parse([]byte(doc), "/etc/rotor")
	if err != nil {
		return nil, err
	}
	return &c.Secrets[0], nil
}

func TestClerkProviderConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		block   string
		wantErr string
		check   func(t *testing.T, s *config.Secret)
	}{
		"defaults": {
			block: "    provider: clerk\n",
			check: func(t *testing.T, s *config.Secret) {
				c := s.ProviderOptions.(clerk.Options)
				if c.APIURL != "https://api.clerk.com" || time.Duration(c.Timeout) != 10*time.Second || c.DashboardName != "rotor-{date}" || c.Mint != nil {
					t.Errorf("defaults = %+v", c)
				}
			},
		},
		"full block": {
			block: `    provider: clerk
    clerk:
      api_url: http://127.0.0.1:8080/v1/
      timeout: 3s
      environment: live
      dashboard_name: "{secret}-{date}"
      mint: {command: [./mint.sh], timeout: 1m}
      revoke: {command: [./revoke.sh]}
`,
			check: func(t *testing.T, s *config.Secret) {
				c := s.ProviderOptions.(clerk.Options)
				if c.APIURL != "http://127.0.0.1:8080" || c.Environment != "live" || !strings.HasSuffix(c.Mint.Command[0], "/mint.sh") || !filepath.IsAbs(c.Mint.Command[0]) || c.Revoke == nil {
					t.Errorf("block = %+v", c)
				}
			},
		},
		"plain http off loopback": {
			block:   "    provider: clerk\n    clerk: {api_url: \"http://clerk.internal\"}\n",
			wantErr: "secrets[0].clerk.api_url: plain http is only allowed to a loopback address",
		},
		"not a url":       {block: "    provider: clerk\n    clerk: {api_url: \"api.clerk.com\"}\n", wantErr: "invalid URL"},
		"bad environment": {block: "    provider: clerk\n    clerk: {environment: prod}\n", wantErr: `unknown environment "prod"`},
		"bad placeholder": {block: "    provider: clerk\n    clerk: {dashboard_name: \"rotor-{day}\"}\n", wantErr: "unknown placeholder {day}"},
		"hook without command": {
			block: "    provider: clerk\n    clerk: {mint: {timeout: 1s}}\n", wantErr: "secrets[0].clerk.mint.command: hook needs a command"},
		"negative timeout": {block: "    provider: clerk\n    clerk: {timeout: -1s}\n", wantErr: "invalid duration"},
		"unknown field":    {block: "    provider: clerk\n    clerk: {secret_key: x}\n", wantErr: "secret_key"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSecret(t, tt.block)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

// TestClerkPlatformConfig pins the keys of the clerk.platform block that
// docs and scripts rely on (issue 13): application_id, instance, token_env.
func TestClerkPlatformConfig(t *testing.T) {
	t.Parallel()
	const app = "        application_id: app_2abc\n"
	tests := map[string]struct {
		block   string
		wantErr string
	}{
		"ok":                {block: app + "        instance: production\n"},
		"instance id":       {block: app + "        instance: ins_2xyz\n        token_env: PLATFORM_TOKEN\n"},
		"no application":    {block: "        instance: production\n", wantErr: "secrets[0].clerk.platform.application_id: application_id is required"},
		"bad application":   {block: "        application_id: ../x\n        instance: production\n", wantErr: "is not a Clerk application id"},
		"no instance":       {block: app, wantErr: "secrets[0].clerk.platform.instance: instance is required"},
		"bad instance":      {block: app + "        instance: prod\n", wantErr: `"prod" is not an instance`},
		"token in yaml":     {block: app + "        instance: production\n        token_env: \"ak-abc.def\"\n", wantErr: "secrets[0].clerk.platform.token_env: must name an environment variable"},
		"unknown key":       {block: app + "        instance: production\n        token: x\n", wantErr: "field token not found"},
		"environment clash": {block: app + "        instance: production\n      environment: test\n", wantErr: "cannot belong to the production instance"},
		"with a mint hook":  {block: app + "        instance: production\n      mint: {command: [./mint.sh]}\n", wantErr: "a mint hook and platform exclude each other"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSecret(t, "    provider: clerk\n    clerk:\n      platform:\n"+tt.block)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "ak-abc") {
					t.Fatalf("the error echoes a token: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			pl := s.ProviderOptions.(clerk.Options).Platform
			if pl == nil || pl.ApplicationID != "app_2abc" || pl.TokenEnv == "" {
				t.Fatalf("platform = %+v", pl)
			}
			if name == "ok" && pl.TokenEnv != "CLERK_PLATFORM_API_TOKEN" {
				t.Errorf("token_env default = %q", pl.TokenEnv)
			}
		})
	}
}

func TestClerkMachineProviderConfig(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		block   string
		wantErr string
	}{
		"ok":           {block: "      machine_id: mch_2abc\n"},
		"no machine":   {block: "      timeout: 2s\n", wantErr: "machine_id is required"},
		"bad machine":  {block: "      machine_id: ../users\n", wantErr: "is not a Clerk machine id"},
		"key in yaml":  {block: "      machine_id: mch_2abc\n      instance_key_env: sk_live_abcdefghijklmnop\n", wantErr: "not hold the key itself"},
		"bad env name": {block: "      machine_id: mch_2abc\n      instance_key_env: CLERK-KEY\n", wantErr: `"CLERK-KEY" is not an environment variable name`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSecret(t, "    provider: clerk-machine\n    clerk_machine:\n"+tt.block)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "sk_live_") {
					t.Fatalf("the error echoes a key: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := s.ProviderOptions.(clerkmachine.Options); c.InstanceKeyEnv != "CLERK_SECRET_KEY" || c.APIURL != "https://api.clerk.com" {
				t.Errorf("defaults = %+v", c)
			}
		})
	}
}

func TestExecProviderConfig(t *testing.T) {
	t.Parallel()
	s, err := parseSecret(t, "    provider: exec\n    exec: {command: [./bin/rotate, --flag]}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ProviderOptions.(exec.Options).Command[0]; got != filepath.Join("/etc/rotor", "bin/rotate") {
		t.Errorf("command = %q, want it resolved against the config directory", got)
	}
	if time.Duration(s.ProviderOptions.(exec.Options).Timeout) != 30*time.Second {
		t.Errorf("timeout = %s, want 30s", time.Duration(s.ProviderOptions.(exec.Options).Timeout))
	}
	s, err = parseSecret(t, "    provider: exec\n    exec: {command: [rotate-db]}\n")
	if err != nil || s.ProviderOptions.(exec.Options).Command[0] != "rotate-db" {
		t.Errorf("a bare program name must stay for PATH lookup: %v %v", s, err)
	}
	if _, err := parseSecret(t, "    provider: exec\n    exec: {command: []}\n"); err == nil || !strings.Contains(err.Error(), "command is required") {
		t.Errorf("empty command: %v", err)
	}
}

// TestSeveralClerkInstances: the README's pattern for several instances
// of one application (development, staging, production) without
// copy-paste: one anchored secret, merged (<<) into the others, with the
// platform block merged too and only what differs written out; and
// validation that two secrets never make `rotor run` write the same
// environment variable.
func TestSeveralClerkInstances(t *testing.T) {
	t.Parallel()
	doc := `secrets:
  - &clerk
    name: clerk-development
    provider: clerk
    env: CLERK_SECRET_KEY_DEVELOPMENT
    clerk:
      platform: &platform {application_id: app_2abc, instance: development}
  - <<: *clerk
    name: clerk-staging
    env: CLERK_SECRET_KEY_STAGING
    clerk:
      platform: {<<: *platform, instance: ins_2staging}
  - <<: *clerk
    name: clerk-production
    env: CLERK_SECRET_KEY
    clerk:
      environment: live
      platform: {<<: *platform, instance: production}
`
	c, err := config.Parse([]byte(doc), "/etc/rotor")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"clerk-development": "development", "clerk-staging": "ins_2staging", "clerk-production": "production"}
	for _, s := range c.Secrets {
		pl := s.ProviderOptions.(clerk.Options).Platform
		if pl == nil || pl.ApplicationID != "app_2abc" || pl.Instance != want[s.Name] || pl.TokenEnv != "CLERK_PLATFORM_API_TOKEN" {
			t.Errorf("%s: platform = %+v", s.Name, pl)
		}
	}

	tests := map[string]struct{ doc, wantErr string }{
		"same env": {
			doc:     "secrets:\n  - {name: a, provider: random, env: CLERK_SECRET_KEY}\n  - {name: b, provider: random, env: CLERK_SECRET_KEY}\n",
			wantErr: "secrets[1].env: `rotor run` would write CLERK_SECRET_KEY for this secret and for secrets[0] (a)",
		},
		"env of one is a suffix variable of the other": {
			doc:     "secrets:\n  - {name: clerk-secret-key, provider: random}\n  - {name: b, provider: random, env: CLERK_SECRET_KEY_PRIMARY}\n",
			wantErr: "would write CLERK_SECRET_KEY_PRIMARY for this secret and for secrets[0] (clerk-secret-key)",
		},
		"default env from the name": {
			doc:     "secrets:\n  - {name: clerk.key, provider: random}\n  - {name: clerk-key, provider: random}\n",
			wantErr: "would write CLERK_KEY for this secret",
		},
		"merge of a scalar": {
			doc:     "secrets:\n  - {name: a, provider: clerk, clerk: {<<: 3}}\n",
			wantErr: "a merge key takes a mapping",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := config.Parse([]byte(tt.doc), "/etc/rotor")
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestClerkPlatformTokenIsKeptFromChildren: the Platform API token's
// variable is one rotor consumes, so hooks and `rotor run` children do not
// inherit it; manual mode consumes none.
func TestClerkPlatformTokenIsKeptFromChildren(t *testing.T) {
	t.Parallel()
	doc := "secrets:\n  - {name: a, provider: clerk, clerk: {platform: {application_id: app_1, instance: production, token_env: MY_PLATFORM_TOKEN}}}\n  - {name: b, provider: clerk}\n"
	c, err := config.Parse([]byte(doc), "/etc/rotor")
	if err != nil {
		t.Fatal(err)
	}
	env := c.ConsumedEnv()
	if !slices.Contains(env, "MY_PLATFORM_TOKEN") || slices.Contains(env, "CLERK_PLATFORM_API_TOKEN") {
		t.Fatalf("ConsumedEnv = %v, want MY_PLATFORM_TOKEN and not the unused default", env)
	}
}
