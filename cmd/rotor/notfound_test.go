package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/api"
)

// TestUnknownSecretName: every command that takes a secret name answers a
// name the config does not list the same way, dry run or not: the
// not_found class (exit 1, code not_found) with a hint that says how to
// see the configured names, in text and in the -o json error document.
func TestUnknownSecretName(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	env := []string{"NEW_KEY=Z29sZGVuLXN0YWdlZC12YWx1ZS0wMTIzNDU2Nzg5YWI"}
	tests := []struct {
		name string
		args []string
	}{
		{"status", []string{"status", "nosuch"}},
		{"rotate", []string{"rotate", "nosuch"}},
		{"rotate dry run", []string{"rotate", "nosuch", "--dry-run"}},
		{"rotate abort", []string{"rotate", "nosuch", "--abort"}},
		{"rollback", []string{"rollback", "nosuch"}},
		{"rollback dry run", []string{"rollback", "nosuch", "--dry-run"}},
		{"revoke", []string{"revoke", "nosuch"}},
		{"revoke dry run", []string{"revoke", "nosuch", "--dry-run"}},
		{"stage", []string{"stage", "nosuch", "--from-env", "NEW_KEY"}},
		{"get", []string{"get", "nosuch"}},
		{"history", []string{"history", "nosuch"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.args[0]] = true
		t.Run(tt.name, func(t *testing.T) {
			r := rotor(t, dir, env, tt.args...)
			if r.code != exitError {
				t.Fatalf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			if !strings.Contains(r.stderr, `rotor: error: no secret "nosuch"`) || !strings.Contains(r.stderr, "rotor: hint: `rotor status` lists the configured secrets") {
				t.Fatalf("stderr does not name the secret and hint at rotor status:\n%s", r.stderr)
			}
			r = rotor(t, dir, env, append(tt.args, "-o", "json")...)
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			var doc api.ErrorBody
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &doc); err != nil {
				t.Fatalf("-o json: last line of stderr is not JSON: %v\n%s", err, r.stderr)
			}
			if r.code != exitError || doc.Error.Code != api.CodeNotFound || doc.Error.ExitCode != exitError || !strings.Contains(doc.Error.Hint, "rotor status") {
				t.Fatalf("-o json: exit %d, error document %+v; want exit %d, code %s and the hint", r.code, doc.Error, exitError, api.CodeNotFound)
			}
		})
	}
	for _, c := range secretArgCommands {
		if !covered[c] {
			t.Errorf("rotor %s takes a secret name (secretArgCommands) but is not tested here", c)
		}
	}
}
