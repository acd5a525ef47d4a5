package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/rotor-dev/rotor/api"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.golden from what rotor prints")

// noJSON lists the commands that take no -o json, and why. Every other
// command that runs must have it.
var noJSON = map[string]string{
	"rotor run":    "it runs a child process: what it prints is the child's",
	"rotor serve":  "a server: its API answers the documents of package api; its log is JSON (slog)",
	"rotor daemon": "a server, like serve",
}

// TestEveryCommandHasJSONOutput walks the command tree: every command
// that runs has --output/-o accepting json, except those noJSON lists
// (which must still exist, so the list cannot rot).
func TestEveryCommandHasJSONOutput(t *testing.T) {
	root := newRootCmd(&globals{env: newEnv()})
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if !c.Runnable() {
			return
		}
		path := c.CommandPath()
		seen[path] = true
		if _, ok := noJSON[path]; ok {
			return
		}
		f := c.Flags().Lookup("output")
		if f == nil || f.Shorthand != "o" {
			t.Errorf("%s has no -o/--output flag", path)
			return
		}
		if !strings.Contains(f.Usage, "json") {
			t.Errorf("%s: --output help %q does not offer json", path, f.Usage)
		}
		if err := f.Value.Set("json"); err != nil {
			t.Errorf("%s: -o json: %v", path, err)
		}
	}
	walk(root)
	if len(seen) < 20 {
		t.Fatalf("walked only %d commands", len(seen))
	}
	for path := range noJSON {
		if !seen[path] {
			t.Errorf("noJSON lists %s, which is not a command", path)
		}
	}
}

// TestJSONErrorDocument: with -o json a failure prints nothing on stdout
// and, as the last line of stderr, one api.ErrorBody with the code of the
// failure and the exit code rotor exits with; usage errors too, even
// when the flags did not parse.
func TestJSONErrorDocument(t *testing.T) {
	dir := t.TempDir()
	mustRotor(t, dir, "init")
	mustRotor(t, dir, "rotate", "demo")
	tests := []struct {
		name string
		args []string
		code string
		exit int
	}{
		{"unknown secret", []string{"status", "nosuch", "-o", "json"}, api.CodeNotFound, exitError},
		{"nothing to roll back", []string{"rollback", "demo", "-o", "json"}, api.CodeNothingToRollBack, exitRefused},
		{"usage", []string{"rotate", "-o", "json"}, api.CodeUsage, exitUsage},
		{"unknown flag", []string{"status", "--bogus", "--output=json"}, api.CodeUsage, exitUsage},
		{"bad format", []string{"status", "-o", "yaml"}, "", exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rotor(t, dir, nil, tt.args...)
			if r.code != tt.exit {
				t.Fatalf("exit %d, want %d\n%s", r.code, tt.exit, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			var doc api.ErrorBody
			err := json.Unmarshal([]byte(lines[len(lines)-1]), &doc)
			if tt.code == "" {
				// -o yaml is not a request for JSON.
				if err == nil {
					t.Fatalf("an error document for -o yaml: %s", r.stderr)
				}
				return
			}
			if err != nil {
				t.Fatalf("last line of stderr is not JSON: %v\n%s", err, r.stderr)
			}
			if doc.Error.Code != tt.code || doc.Error.ExitCode != tt.exit || doc.Error.Message == "" {
				t.Fatalf("error document %+v, want code %s, exit_code %d", doc.Error, tt.code, tt.exit)
			}
		})
	}
}

// TestJSONGolden runs a session of commands with -o json and compares
// each document with testdata/golden/NAME.golden (go test -run
// TestJSONGolden -update rewrites them). What changes from run to run is
// replaced before the comparison: the work directory by $WORK, key ids,
// operation ids and hashes by numbered placeholders (the same id gets the
// same placeholder throughout the session), times by <time>, store
// versions, record counts and seqs by N, and the one revealed value by
// <value>.
func TestJSONGolden(t *testing.T) {
	dir := t.TempDir()
	const staged = "Z29sZGVuLXN0YWdlZC12YWx1ZS0wMTIzNDU2Nzg5YWI" // 32 bytes, base64url, as demo wants
	env := []string{"NEW_KEY=" + staged}
	n := newNormalizer(dir)
	steps := []struct {
		golden string
		args   []string
		exit   int
	}{
		{"init", []string{"init"}, 0},
		{"rotate", []string{"rotate", "demo"}, 0},
		{"rotate_again", []string{"rotate", "demo"}, 0},
		{"rotate_due", []string{"rotate", "--due"}, 0},
		{"rotate_dry_run", []string{"rotate", "demo", "--dry-run"}, 0},
		{"stage", []string{"stage", "demo", "--from-env", "NEW_KEY"}, 0},
		{"status", []string{"status", "demo"}, 0},
		{"status_all", []string{"status"}, 0},
		{"get", []string{"get", "demo", "--slot", "next"}, 0},
		{"get_reveal", []string{"get", "demo", "--slot", "next", "--reveal"}, 0},
		{"revoke_refused", []string{"revoke", "demo"}, exitRefused},
		{"rollback_dry_run", []string{"rollback", "demo", "--dry-run"}, 0},
		{"revoke_dry_run_refused", []string{"revoke", "demo", "--dry-run"}, exitRefused},
		{"rollback", []string{"rollback", "demo"}, 0},
		{"revoke", []string{"revoke", "demo"}, 0},
		{"audit_verify", []string{"audit", "verify", "--open"}, 0},
		{"audit_tail", []string{"audit", "tail", "-n", "2"}, 0},
		{"audit_init", []string{"audit", "init"}, 0},
		{"policy_vault", []string{"policy", "vault", "--role", "viewer"}, 0},
		{"error_not_found", []string{"get", "nosuch"}, exitError},
	}
	for _, st := range steps {
		r := rotor(t, dir, env, append(st.args, "-o", "json")...)
		if r.code != st.exit {
			t.Fatalf("rotor %s: exit %d, want %d\n%s%s", strings.Join(st.args, " "), r.code, st.exit, r.stdout, r.stderr)
		}
		if st.golden == "get_reveal" {
			var doc api.Get
			if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Value != staged {
				t.Fatalf("get --reveal -o json does not carry the value: %v\n%s", err, r.stdout)
			}
		} else if strings.Contains(r.stdout+r.stderr, staged) {
			t.Fatalf("rotor %s printed the staged value", strings.Join(st.args, " "))
		}
		got := fmt.Sprintf("$ rotor %s -o json\n# exit %d\n# stdout\n%s# stderr\n%s",
			strings.Join(st.args, " "), r.code, n.normalize(r.stdout), n.normalize(r.stderr))
		path := filepath.Join("testdata", "golden", st.golden+".golden")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if got != string(want) {
			t.Errorf("rotor %s -o json differs from %s (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s",
				strings.Join(st.args, " "), path, got, want)
		}
	}
}

// normalizer replaces what changes between runs with placeholders.
type normalizer struct {
	dir   string
	names map[string]string
	count map[string]int
}

func newNormalizer(dir string) *normalizer {
	return &normalizer{dir: dir, names: map[string]string{}, count: map[string]int{}}
}

var (
	reHash  = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	reOpID  = regexp.MustCompile(`\b\d{8}T\d{6}Z-[0-9a-f]{8}(-[a-z]+-[0-9a-f]{8})?\b`)
	reKeyID = regexp.MustCompile(`\b[0-9a-f]{16}\b`)
	reTime  = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	reValue = regexp.MustCompile(`"value": "[^"]*"`)
	reTook  = regexp.MustCompile(`\d+ records/s`)
	// Counts of store writes and audit records are the engine's business,
	// not the documents' shape.
	reCounts = regexp.MustCompile(`"(version|records|seq)":( ?)("?)\d+"?`)
)

func (n *normalizer) normalize(s string) string {
	s = strings.ReplaceAll(s, n.dir, "$WORK")
	s = reValue.ReplaceAllString(s, `"value": "<value>"`)
	s = reHash.ReplaceAllStringFunc(s, func(m string) string { return n.name("hash", m) })
	s = reOpID.ReplaceAllStringFunc(s, func(m string) string { return n.name("op", m) })
	s = reTime.ReplaceAllString(s, "<time>")
	s = reKeyID.ReplaceAllStringFunc(s, func(m string) string { return n.name("key", m) })
	s = reCounts.ReplaceAllString(s, `"$1":$2${3}N$3`)
	return reTook.ReplaceAllString(s, "N records/s")
}

func (n *normalizer) name(kind, m string) string {
	if p, ok := n.names[m]; ok {
		return p
	}
	n.count[kind]++
	p := fmt.Sprintf("<%s%d>", kind, n.count[kind])
	n.names[m] = p
	return p
}
