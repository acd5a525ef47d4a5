package audit

import "testing"

func TestDetectInitiator(t *testing.T) {
	gha := map[string]string{
		"GITHUB_ACTIONS":    "true",
		"GITHUB_REPOSITORY": "acme/web",
		"GITHUB_WORKFLOW":   "rotate-keys",
		"GITHUB_RUN_ID":     "123456",
	}
	with := func(env map[string]string, k, v string) map[string]string {
		m := map[string]string{}
		for k, v := range env {
			m[k] = v
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name   string
		flag   string
		env    map[string]string
		osUser string
		want   string
	}{
		{"flag wins over everything", "admin:ana", with(gha, "ROTOR_INITIATOR", "env"), "bob", "admin:ana"},
		{"environment over CI", "", with(gha, "ROTOR_INITIATOR", "ci:gitlab:42"), "bob", "ci:gitlab:42"},
		{"GitHub Actions", "", gha, "runner", "ci:github:acme/web:rotate-keys#123456"},
		{"GITHUB_ACTIONS not true", "", with(gha, "GITHUB_ACTIONS", "false"), "bob", "user:bob"},
		{"os user", "", nil, "bob", "user:bob"},
		{"no os user", "", nil, "", "user:unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			got := DetectInitiator(tt.flag, getenv, func() string { return tt.osUser })
			if got != tt.want {
				t.Errorf("DetectInitiator = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDetectInitiatorDefaults(t *testing.T) {
	t.Setenv("ROTOR_INITIATOR", "from-env")
	if got := DetectInitiator("", nil, nil); got != "from-env" {
		t.Errorf("DetectInitiator with nil getenv = %q, want the process environment's %q", got, "from-env")
	}
	t.Setenv("ROTOR_INITIATOR", "")
	t.Setenv("GITHUB_ACTIONS", "")
	if got := DetectInitiator("", nil, nil); len(got) <= len("user:") || got[:5] != "user:" {
		t.Errorf("DetectInitiator with nil osUser = %q, want user:<name>", got)
	}
}
