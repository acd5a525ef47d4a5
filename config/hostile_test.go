package config

import (
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
