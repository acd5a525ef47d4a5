package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/provider/random"
	"github.com/rotor-dev/rotor/store"
)

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte("secrets:\n  - name: demo\n    provider: random\n"), "/srv/rotor")
	if err != nil {
		t.Fatal(err)
	}
	s := &c.Secrets[0]
	pol := c.Policy(s)
	if pol.Every != 720*time.Hour || pol.Grace != 24*time.Hour || pol.Lease != DefaultLease {
		t.Fatalf("policy = %+v, want every 720h, grace 24h, default lease", pol)
	}
	if c.Store.Type != "file" || c.Store.File.Dir != "/srv/rotor/.rotor/store" || c.Store.File.Identity != "/srv/rotor/.rotor/identity.txt" {
		t.Fatalf("store = %+v %+v, want the file store under the config dir", c.Store, c.Store.File)
	}
	if c.Audit.Path != "/srv/rotor/.rotor/audit.log" || c.Audit.Anchor != "/srv/rotor/.rotor/store/audit.head" {
		t.Fatalf("audit = %+v", c.Audit)
	}
	if r := s.ProviderOptions.(random.Options); r.Bytes != 32 || r.Encoding != "base64url" {
		t.Fatalf("random defaults = %+v", r)
	}
}

func TestOverrides(t *testing.T) {
	doc := `
defaults:
  every: 30d
  grace: 12h
secrets:
  - name: a
    provider: random
  - name: b
    provider: random
    every: 7d
    grace: 1h
    lease: 2m
`
	c, err := Parse([]byte(doc), "/x")
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Policy(&c.Secrets[0]), c.Policy(&c.Secrets[1])
	if a.Every != 720*time.Hour || a.Grace != 12*time.Hour {
		t.Errorf("a = %+v, want defaults 30d/12h", a)
	}
	if b.Every != 7*24*time.Hour || b.Grace != time.Hour || b.Lease != 2*time.Minute {
		t.Errorf("b = %+v, want overrides 7d/1h/2m", b)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // every fragment must appear in the error
	}{
		{"unknown top-level key names key and line", "secrets: []\nstorage: {}\n", []string{"line 2", "field storage not found"}},
		{"unknown nested key", "secrets:\n  - name: a\n    provider: random\n    random:\n      size: 3\n", []string{"line 5", "field size not found"}},
		{"empty document", "", []string{"config is empty"}},
		{"no secrets", "defaults: {every: 1h}\n", []string{"secrets: no secrets configured"}},
		{"bad name", "secrets:\n  - name: 'has space'\n    provider: random\n", []string{"line 2", "secrets[0].name", "invalid secret name"}},
		{"missing provider", "secrets:\n  - name: a\n", []string{"line 2", "has no provider"}},
		{"unknown provider", "secrets:\n  - name: a\n    provider: vaultish\n", []string{"line 3", `unknown provider "vaultish"`}},
		{"block for another provider", "secrets:\n  - name: a\n    provider: random\n    exec: {command: [x]}\n", []string{"line 4", `block exec does not match provider "random"`}},
		{"grace not shorter than every", "secrets:\n  - name: a\n    provider: random\n    every: 1h\n    grace: 2h\n", []string{"line 5", "grace (2h0m0s) must be shorter than every (1h0m0s)"}},
		{"bad duration", "secrets:\n  - name: a\n    provider: random\n    every: soon\n", []string{"line 4", `invalid duration "soon"`}},
		{"random too short", "secrets:\n  - name: a\n    provider: random\n    random: {bytes: 8}\n", []string{"line 4", "bytes must be between 16 and 1024, got 8"}},
		{"random bad encoding", "secrets:\n  - name: a\n    provider: random\n    random: {encoding: rot13}\n", []string{`unknown encoding "rot13"`}},
		{"duplicate names", "secrets:\n  - name: a\n    provider: random\n  - name: a\n    provider: random\n", []string{"line 4", `secret "a" is already defined at secrets[0]`}},
		{"unknown store", "store: {type: etcd}\nsecrets:\n  - {name: a, provider: random}\n", []string{"line 1", `unknown store type "etcd"`}},
		{"hook without command", "secrets:\n  - name: a\n    provider: random\n    verify:\n      - timeout: 1s\n", []string{"secrets[0].verify[0]", "hook needs exactly one of command, http, signal or kubernetes"}},
		{"lease too short", "defaults: {lease: 10ms}\nsecrets:\n  - {name: a, provider: random}\n", []string{"lease (10ms) must be at least 1s"}},
		{"unknown sink", "audit:\n  sinks:\n    - type: kafka\nsecrets:\n  - {name: a, provider: random}\n", []string{"audit.sinks[0]", `unknown sink type "kafka" (want stdout, syslog or otlp)`}},
		{"otlp endpoint not a URL", "audit:\n  sinks:\n    - {type: otlp, endpoint: 'collector:4318'}\nsecrets:\n  - {name: a, provider: random}\n", []string{"audit.sinks[0].endpoint", `invalid URL "collector:4318"`}},
		{"endpoint on a syslog sink", "audit:\n  sinks:\n    - {type: syslog, address: 'h:514', endpoint: 'https://c/v1/logs'}\nsecrets:\n  - {name: a, provider: random}\n", []string{"audit.sinks[0].endpoint", "only an otlp sink has an endpoint"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "/x")
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidationCollectsEveryProblem(t *testing.T) {
	doc := "secrets:\n  - name: a\n    provider: nope\n  - name: b\n    provider: random\n    random: {bytes: 1}\n"
	_, err := Parse([]byte(doc), "/x")
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Problems) != 2 {
		t.Fatalf("err = %v, want a ValidationError with 2 problems", err)
	}
}

func TestParseDuration(t *testing.T) {
	tests := map[string]time.Duration{"30d": 720 * time.Hour, "720h": 720 * time.Hour, "90m": 90 * time.Minute, "0d": 0}
	for in, want := range tests {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "-5m", "3w"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", bad)
		}
	}
}

// FuzzParse feeds arbitrary documents to the config parser: it must never
// panic, and what it accepts must be fully valid.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"secrets:\n  - name: demo\n    provider: random\n",
		"store: {type: file}\ndefaults: {every: 30d, grace: 1h}\nsecrets:\n  - {name: a, provider: random, random: {bytes: 64, encoding: hex}}\n",
		"secrets:\n  - name: a\n    provider: exec\n    exec: {command: [x]}\n",
		"secrets: [{name: a, provider: clerk}]\n",
		"store: {type: vault, vault: {mount: kv}}\nsecrets: [{name: a, provider: random}]\n",
		"secrets: {}\n",
		"- a\n- b\n",
		"a: &x [*x]\n",
		"secrets:\n  - name: a\n    provider: random\n    verify: [{command: [true], timeout: 1s}]\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		c, err := Parse(doc, "/fuzz")
		if err != nil {
			return
		}
		if len(c.Secrets) == 0 {
			t.Fatal("accepted a config without secrets")
		}
		for i := range c.Secrets {
			s := &c.Secrets[i]
			if pol := c.Policy(s); pol.Grace >= pol.Every || pol.Lease < time.Second {
				t.Fatalf("accepted an invalid policy %+v", pol)
			}
		}
	})
}

// TestUnknownSecret: a name the config does not list is a not-found error
// (the class the CLI and the API report as not_found) that names the
// configured secrets, at most maxNamesShown of them.
func TestUnknownSecret(t *testing.T) {
	var doc strings.Builder
	doc.WriteString("secrets:\n")
	for i := range maxNamesShown + 3 {
		fmt.Fprintf(&doc, "  - name: s%02d\n    provider: random\n", i)
	}
	c, err := Parse([]byte(doc.String()), "/x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Secret("s00"); err != nil {
		t.Fatalf("a configured secret: %v", err)
	}
	_, err = c.Secret("nosuch")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("error %v does not match store.ErrNotFound", err)
	}
	var ue *UnknownSecretError
	if !errors.As(err, &ue) || ue.Name != "nosuch" || len(ue.Configured) != maxNamesShown+3 {
		t.Fatalf("error %#v, want an UnknownSecretError naming nosuch and the %d configured", err, maxNamesShown+3)
	}
	want := `no secret "nosuch" in ` + c.Path + ` (configured: s00, s01, s02, s03, s04, s05, s06, s07, s08, s09 and 3 more)`
	if err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}
