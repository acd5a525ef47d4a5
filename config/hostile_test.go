package config

import (
	"slices"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// Hostile input to rotor.yaml: configurations that are syntactically fine
// but would widen access or weaken rotation by accident (or by a
// malicious pull request to the config), and what validation must say,
// with the line.

func TestHostileConfig(t *testing.T) {
	const secret = "secrets:\n  - name: a\n    provider: random\n"
	oidc := func(rule string) string {
		return "server:\n  oidc:\n    - audience: rotor\n      rules:\n        - " + rule + "\n" + secret
	}
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"OIDC rule for every repository", oidc(`{sub: 'repo:*/*:ref:refs/heads/main', role: admin}`),
			[]string{"line 5", "server.oidc[0].rules[0]", "sub"}},
		{"OIDC rule for an owner's repositories", oidc(`{repository_owner: acme, role: ci}`),
			[]string{"line 5", "server.oidc[0].rules[0]", "pin one repository"}},
		{"OIDC rule with a wildcard repository", oidc(`{repository: 'acme/*', role: ci}`),
			[]string{"line 5", "repository"}},
		{"every below the floor", secret + "    every: 30m\n",
			[]string{"line 4", "secrets[0].every", "below the floor of 1h"}},
		{"default every below the floor", "defaults: {every: 10m, grace: 1m}\n" + secret,
			[]string{"line 1", "defaults.every", "below the floor"}},
		{"grace below the floor", secret + "    grace: 10s\n",
			[]string{"line 4", "secrets[0].grace", "below the floor of 1m"}},
		{"cron every five minutes", secret + "    cron: '*/5 * * * *'\n",
			[]string{"line 4", "secrets[0].cron", "5m0s apart"}},
		{"name one character too long", "secrets:\n  - name: " + strings.Repeat("A", store.MaxNameLen+1) + "\n    provider: random\n",
			[]string{"line 2", "want 1-128 characters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "/x")
			if err == nil {
				t.Fatal("Parse accepted it")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// TestShortIntervalsNeedConsent: the floors are lifted only by an
// explicit allow_short_intervals, and the longest valid name (which every
// store can hold) is accepted.
func TestShortIntervalsNeedConsent(t *testing.T) {
	doc := "defaults: {allow_short_intervals: true, every: 2m, grace: 1s}\nsecrets:\n  - name: " +
		strings.Repeat("A", store.MaxNameLen) + "\n    provider: random\n  - {name: b, provider: random, cron: '* * * * *', grace: 5s}\n"
	c, err := Parse([]byte(doc), "/x")
	if err != nil {
		t.Fatal(err)
	}
	if p := c.Policy(&c.Secrets[0]); p.Every != MinEvery/30 || p.Grace >= MinGrace {
		t.Fatalf("policy = %+v", p)
	}
}

// TestConsumedEnv: what rotor keeps from hooks and rotor run children is
// what the configured store, providers and hooks read: the Vault client's
// variables and the GitHub ID token request for jwt auth, the AWS
// credential chain's variables, clerk-machine's instance key, an HTTP
// hook's token, and ROTOR_*; not the AWS region or KUBECONFIG.
func TestConsumedEnv(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		want, not []string
	}{
		{"vault jwt from GitHub", "store: {type: vault, vault: {address: 'https://v', auth: {method: jwt, role: r, audience: rotor}}}\n" +
			"secrets:\n  - {name: m, provider: clerk-machine, clerk_machine: {machine_id: mch_1}}\n",
			[]string{"VAULT_*", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL", "CLERK_SECRET_KEY", "ROTOR_*"}, []string{"AWS_SECRET_ACCESS_KEY"}},
		{"aws", "store: {type: awssm}\nsecrets:\n  - name: a\n    provider: random\n    reload:\n      - http: {url: 'https://h', token_env: DEPLOY_TOKEN}\n",
			[]string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "DEPLOY_TOKEN"}, []string{"AWS_REGION", "VAULT_*", "KUBECONFIG"}},
		{"file store", "secrets:\n  - {name: a, provider: clerk-machine, clerk_machine: {machine_id: mch_1, instance_key_env: CLERK_INSTANCE_KEY}}\n",
			[]string{"CLERK_INSTANCE_KEY", "ROTOR_*"}, []string{"VAULT_*", "AWS_SECRET_ACCESS_KEY", "CLERK_SECRET_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "/x")
			if err != nil {
				t.Fatal(err)
			}
			got := c.ConsumedEnv()
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("ConsumedEnv = %q, lacks %s", got, w)
				}
			}
			for _, n := range tt.not {
				if slices.Contains(got, n) {
					t.Errorf("ConsumedEnv = %q, has %s", got, n)
				}
			}
		})
	}
}
