package config

import (
	"errors"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/notify"
	"github.com/rotor-dev/rotor/store/awssm"
	"github.com/rotor-dev/rotor/store/vault"
	"github.com/rotor-dev/rotor/trigger/kubernetes"
)

func TestYAMLKey(t *testing.T) {
	tests := map[string]string{
		"Bytes":          "bytes",
		"APIURL":         "api_url",
		"MachineID":      "machine_id",
		"InstanceKeyEnv": "instance_key_env",
		"KMSKeyID":       "kms_key_id",
		"JWTFile":        "jwt_file",
		"SecretIDFile":   "secret_id_file",
		"RoleID":         "role_id",
		"Kubeconfig":     "kubeconfig",
		"SSLMode":        "ssl_mode",
		"DSN":            "dsn",
		"HTTP2":          "http2",
		"ABCThing":       "abc_thing", // not initialisms: one word
	}
	for name, want := range tests {
		if got := yamlKey(name); got != want {
			t.Errorf("yamlKey(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestBlockKeys pins the keys of every backend block: they are rotor.yaml's
// interface (README "Configuration"), derived from the backends' Options
// field names, so renaming a field must not silently rename a key.
func TestBlockKeys(t *testing.T) {
	want := map[string][]string{
		"store.vault":      {"address", "namespace", "mount", "prefix", "max_versions", "auth"},
		"store.vault.auth": {"method", "mount", "role", "token_file", "role_id", "secret_id_file", "jwt_file", "audience"},
		"store.awssm":      {"region", "endpoint", "prefix", "kms_key_id"},
		"kubernetes":       {"namespace", "deployment", "kubeconfig"},
		"random":           {"bytes", "encoding", "prefix"},
		"clerk":            {"api_url", "timeout", "environment", "dashboard_name", "mint", "revoke", "platform"},
		"clerk.mint":       {"command", "timeout"},
		"clerk.platform":   {"application_id", "instance", "token_env"},
		"clerk_machine":    {"api_url", "machine_id", "instance_key_env", "timeout"},
		"exec":             {"command", "timeout"},
		"notify":           {"targets", "attempts", "timeout", "exit_wait", "retry_for", "min_backoff", "max_backoff", "source"},
		"notify.targets":   {"name", "type", "url", "url_env", "events", "signing_key_file", "signing_key_env"},
		"postgres": {"strategy", "url", "roles", "template_role", "admin_url_env", "admin_secret", "revoke",
			"terminate_sessions", "password_length", "password_alphabet", "connect_timeout"},
	}
	got := map[string][]string{
		"store.vault":      keysOf(reflect.TypeFor[vault.Options]()),
		"store.vault.auth": keysOf(reflect.TypeFor[vault.AuthOptions]()),
		"store.awssm":      keysOf(reflect.TypeFor[awssm.Options]()),
		"kubernetes":       keysOf(reflect.TypeFor[kubernetes.Options]()),
		"notify":           keysOf(reflect.TypeFor[notify.Options]()),
		"notify.targets":   keysOf(reflect.TypeFor[notify.TargetOptions]()),
	}
	for _, k := range providers {
		var errs field.List
		o, _ := k.options(nil, nil, "/", &errs)
		got[k.block()] = keysOf(reflect.TypeOf(o))
		if k.name == "clerk" {
			got["clerk.mint"] = keysOf(reflect.TypeOf(o).Field(4).Type.Elem())
			got["clerk.platform"] = keysOf(reflect.TypeOf(o).Field(6).Type.Elem())
		}
	}
	for block, keys := range want {
		if !slices.Equal(got[block], keys) {
			t.Errorf("keys of %s = %v, want %v", block, got[block], keys)
		}
	}
	for block := range got {
		if _, ok := want[block]; !ok {
			t.Errorf("block %s has no pinned keys: add them to this test and to README", block)
		}
	}
}

func keysOf(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			keys = append(keys, yamlKey(f.Name))
		}
	}
	return keys
}

func TestDecodeOptions(t *testing.T) {
	type inner struct{ Command []string }
	type opts struct {
		APIURL  string
		Count   int
		Every   time.Duration
		Hook    *inner
		Nested  inner
		Enabled bool
	}
	decode := func(doc string) (opts, field.List) {
		t.Helper()
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
			t.Fatal(err)
		}
		var o opts
		var errs field.List
		decodeOptions(n.Content[0], &o, field.NewPath("block"), &errs)
		return o, errs
	}
	o, errs := decode("api_url: https://x\ncount: 3\nevery: 30d\nhook: {command: [a, b]}\nnested: {command: [c]}\nenabled: true\n")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if o.APIURL != "https://x" || o.Count != 3 || o.Every != 720*time.Hour || o.Hook == nil || o.Hook.Command[1] != "b" || o.Nested.Command[0] != "c" || !o.Enabled {
		t.Fatalf("decoded %+v", o)
	}
	for doc, want := range map[string]string{
		"apiurl: x\n":             `block.apiurl: field apiurl not found in type config.opts`,
		"count: many\n":           "block.count: cannot unmarshal !!str `many` into int",
		"hook: {cmd: [a]}\n":      "block.hook.cmd: field cmd not found",
		"nested: 3\n":             "block.nested: want a mapping",
		"count: 1\ncount: 2\n":    `block.count: mapping key "count" already defined`,
		"every: soon\n":           `block.every: invalid duration "soon"`,
		"a: &x {b: *x}\nhook: *x": "field b not found",
	} {
		_, errs := decode(doc)
		if !strings.Contains(errs.Error(), want) {
			t.Errorf("decode %q: %v, want %q", doc, errs, want)
		}
	}
}

// TestBackendsDoNotImportConfig keeps the dependency one-way: stores,
// providers and triggers define their own Options, and config translates
// rotor.yaml into them. A backend importing config would drag rotor's
// YAML schema into every program that uses it (an application reading
// Vault through the SDK, for one).
func TestBackendsDoNotImportConfig(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list imports: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(gobin, "list", "-deps", "-test", "-f", "{{.ImportPath}}\t{{join .Imports \" \"}}", "./store/...", "./provider/...", "./trigger/...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	const config = "github.com/rotor-dev/rotor/config"
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, "\t")
		if pkg == config || slices.Contains(strings.Fields(imports), config) {
			t.Errorf("%s imports %s (directly or through its dependencies)", pkg, config)
		}
	}
}
