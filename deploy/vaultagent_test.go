package deploy_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/store/vault"
	"github.com/rotor-dev/rotor/trigger"
)

// The Vault Agent files. The template and agent.hcl are run by the real
// `vault agent` in cmd/rotor's TestVaultAgentTemplate; here they are
// checked against the Injector manifest and the rules of the README.
const (
	agentConfigFile   = "vault-agent/agent.hcl"
	agentTemplateFile = "vault-agent/clerk-secret-key.env.ctmpl"
	injectorFile      = "vault-agent/injector.yaml"
	// agentSecret is the rotor secret the template renders, and
	// agentFile the file the injector writes it to under /vault/secrets.
	agentSecret = "clerk-secret-key"
	agentFile   = "clerk-secret-key.env"
	annotation  = "vault.hashicorp.com/"
)

// checkRenderInterval checks a static_secret_render_interval: a consumer
// behind Vault Agent sees a new key up to one render interval after
// promote, plus its own refresh interval (the keyring SDK polls the file
// every keyring.DefaultInterval by default), and rotor's verify waits for
// it at most the default consumer_timeout. The interval must fit in that,
// with rotor's margin; the grace period (hours) is then never at risk.
func checkRenderInterval(where, value string) []string {
	var p problems
	d, err := time.ParseDuration(value)
	switch {
	case err != nil:
		p.addf("%s: static secret render interval %q: %v", where, value, err)
	case d <= 0:
		p.addf("%s: static secret render interval %s must be positive", where, d)
	case d+keyring.DefaultInterval+trigger.AdoptionMargin > trigger.DefaultConsumerTimeout:
		p.addf("%s: static secret render interval %s plus the SDK's refresh interval %s and rotor's margin %s exceeds the default consumer_timeout %s: rotor's verify would roll back rotations that work",
			where, d, keyring.DefaultInterval, trigger.AdoptionMargin, trigger.DefaultConsumerTimeout)
	}
	return p
}

var hclInterval = regexp.MustCompile(`(?m)^\s*static_secret_render_interval\s*=\s*"([^"]*)"`)

// checkAgentConfig checks agent.hcl: it renders the template to a 0600
// file and re-reads the secret often enough.
func checkAgentConfig(src []byte) []string {
	var p problems
	s := string(src)
	m := hclInterval.FindStringSubmatch(s)
	if m == nil {
		p.addf("%s: no static_secret_render_interval (Vault Agent's default, 5m, outlasts the default consumer_timeout)", agentConfigFile)
	} else {
		p = append(p, checkRenderInterval(agentConfigFile, m[1])...)
	}
	for _, want := range []string{`source      = "clerk-secret-key.env.ctmpl"`, `perms       = "0600"`} {
		if !strings.Contains(s, want) {
			p.addf("%s: no %s", agentConfigFile, want)
		}
	}
	return p
}

// checkInjector checks the Agent Injector manifest: a hardened pod whose
// annotations render the shipped template (the same text) from rotor's KV
// path into a file only the app can read, often enough.
func checkInjector(src, template []byte) []string {
	m, p := decodeManifests(map[string][]byte{injectorFile: src})
	if len(m.deployments) != 1 {
		p.addf("%s: %d Deployments, want 1", injectorFile, len(m.deployments))
		return p
	}
	d := m.deployments[0]
	spec := &d.Spec.Template.Spec
	p = append(p, checkPodSecurity(injectorFile+" Deployment "+d.Name, spec)...)
	if !slices.ContainsFunc(m.accounts, func(a *corev1.ServiceAccount) bool {
		return a.Name == spec.ServiceAccountName && a.Namespace == d.Namespace
	}) {
		p.addf("%s: service account %q is not in the file (the agent logs in with it)", injectorFile, spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		p.addf("%s: automountServiceAccountToken is false: the agent cannot log in", injectorFile)
	}
	ann := d.Spec.Template.Annotations
	get := func(key string) string { return ann[annotation+key] }
	if get("agent-inject") != "true" {
		p.addf("%s: %sagent-inject is %q, want \"true\"", injectorFile, annotation, get("agent-inject"))
	}
	if get("role") == "" {
		p.addf("%s: no %srole (the Vault Kubernetes auth role)", injectorFile, annotation)
	}
	path := vault.DefaultMount + "/data/" + vault.DefaultPrefix + "/" + agentSecret
	if got := get("agent-inject-secret-" + agentFile); got != path {
		p.addf("%s: agent-inject-secret-%s is %q, want rotor's KV path %q", injectorFile, agentFile, got, path)
	}
	if !strings.Contains(string(template), `secret "`+path+`"`) {
		p.addf("%s: does not read %q", agentTemplateFile, path)
	}
	if got, want := strings.TrimRight(get("agent-inject-template-"+agentFile), "\n"), strings.TrimRight(string(template), "\n"); got != want {
		p.addf("%s: agent-inject-template-%s differs from %s", injectorFile, agentFile, agentTemplateFile)
	}
	perms, err := strconv.ParseUint(get("agent-inject-perms-"+agentFile), 8, 32)
	if err != nil || perms&0o077 != 0 {
		p.addf("%s: agent-inject-perms-%s is %q, want the owner only (0400 or 0600)", injectorFile, agentFile, get("agent-inject-perms-"+agentFile))
	}
	if v, ok := ann[annotation+"template-static-secret-render-interval"]; !ok {
		p.addf("%s: no %stemplate-static-secret-render-interval (Vault Agent's default, 5m, outlasts the default consumer_timeout)", injectorFile, annotation)
	} else {
		p = append(p, checkRenderInterval(injectorFile, v)...)
	}
	return p
}

func TestVaultAgentFiles(t *testing.T) {
	reportProblems(t, agentConfigFile, checkAgentConfig(readFile(t, agentConfigFile)))
	reportProblems(t, injectorFile, checkInjector(readFile(t, injectorFile), readFile(t, agentTemplateFile)))
}

// TestVaultAgentChecksCatchBreakage breaks the Vault Agent files one way
// at a time; each must be reported.
func TestVaultAgentChecksCatchBreakage(t *testing.T) {
	injector := func(t *testing.T, src []byte) []string { return checkInjector(src, readFile(t, agentTemplateFile)) }
	template := func(t *testing.T, src []byte) []string { return checkInjector(readFile(t, injectorFile), src) }
	agent := func(_ *testing.T, src []byte) []string { return checkAgentConfig(src) }
	tests := []struct {
		name     string
		file     string
		check    func(*testing.T, []byte) []string
		old, new string
		want     string
	}{
		{"injection off", injectorFile, injector, `agent-inject: "true"`, `agent-inject: "false"`, "agent-inject is"},
		{"no role", injectorFile, injector, "        vault.hashicorp.com/role: web\n", "", "no vault.hashicorp.com/role"},
		{"another path", injectorFile, injector, "clerk-secret-key.env: secret/data/rotor/clerk-secret-key", "clerk-secret-key.env: secret/rotor/clerk-secret-key", "want rotor's KV path"},
		{"template drifted", injectorFile, injector, "CLERK_SECRET_KEY_SECONDARY={{ $prev | toJSON }}", "CLERK_SECRET_KEY_SECONDARY={{ $d.previous | toJSON }}", "differs from"},
		{"template file drifted", agentTemplateFile, template, "(lt (timestamp) $d.previous_expires_at)", "true", "differs from"},
		{"template reads another path", agentTemplateFile, template, `secret "secret/data/rotor/clerk-secret-key"`, `secret "secret/data/clerk"`, "does not read"},
		{"file readable by others", injectorFile, injector, `perms-clerk-secret-key.env: "0400"`, `perms-clerk-secret-key.env: "0644"`, "owner only"},
		{"default render interval", injectorFile, injector, "        vault.hashicorp.com/template-static-secret-render-interval: 30s\n", "", "no vault.hashicorp.com/template-static-secret-render-interval"},
		{"render interval too long", injectorFile, injector, "template-static-secret-render-interval: 30s", "template-static-secret-render-interval: 5m", "exceeds the default consumer_timeout"},
		{"render interval unparsable", injectorFile, injector, "template-static-secret-render-interval: 30s", "template-static-secret-render-interval: thirty", "static secret render interval"},
		{"app as root", injectorFile, injector, "        runAsUser: 10001", "        runAsUser: 0", "runAsUser is 0"},
		{"no service account", injectorFile, injector, "      serviceAccountName: web\n", "      serviceAccountName: api\n", "service account \"api\""},
		{"no token for the agent", injectorFile, injector, "automountServiceAccountToken: true", "automountServiceAccountToken: false", "cannot log in"},
		{"misspelt field", injectorFile, injector, "      serviceAccountName: web", "      serviceAccount_name: web", "unknown field"},
		{"agent default interval", agentConfigFile, agent, `static_secret_render_interval = "30s"`, `# static_secret_render_interval = "30s"`, "no static_secret_render_interval"},
		{"agent interval too long", agentConfigFile, agent, `static_secret_render_interval = "30s"`, `static_secret_render_interval = "2m"`, "exceeds the default consumer_timeout"},
		{"agent file readable by others", agentConfigFile, agent, `perms       = "0600"`, `perms       = "0644"`, `no perms`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := string(readFile(t, tt.file))
			broken := strings.Replace(orig, tt.old, tt.new, 1)
			if broken == orig {
				t.Fatalf("%q not found in %s: update this case", tt.old, tt.file)
			}
			found := tt.check(t, []byte(broken))
			if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("no problem mentioning %q; found %q", tt.want, found)
			}
		})
	}
}
