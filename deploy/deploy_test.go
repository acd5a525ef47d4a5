// Package deploy_test checks the deployment examples under deploy/ and
// examples/.github/: that every file parses, that the security properties
// they promise hold (non-root, read-only, least privilege, no overlapping
// runs), and that they agree with rotor itself (commands, config, metric
// names). Each check is a function returning the problems it finds, run on
// the real files and, in TestChecksCatchBreakage, on broken copies of them,
// so a check that stops detecting anything fails too.
package deploy_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8sjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store/vault"
)

// Files under test, relative to this package's directory (deploy/).
const (
	workflowFile    = "../examples/.github/workflows/rotate.yml"
	ciConfigFile    = "../examples/.github/rotor/rotor.yaml"
	kubernetesDir   = "kubernetes"
	alertsFile      = "prometheus/rotor-alerts.yml"
	dockerfile      = "Dockerfile"
	systemdDir      = "systemd"
	daemonPort      = 8700 // the port rotor daemon's API listens on (server.listen)
	livenessPath    = "/healthz"
	readinessPath   = "/readyz"
	rotorModulePath = "github.com/rotor-dev/rotor/cmd/rotor"
)

// knownMetrics are the metrics rotor daemon exports; the alert rules may
// use no other rotor_* name except proposedMetrics.
var knownMetrics = []string{
	"rotor_rotations_total",
	"rotor_rotation_step_duration_seconds",
	"rotor_key_age_seconds",
	"rotor_rotation_interval_seconds",
	"rotor_next_rotation_seconds",
	"rotor_previous_expires_seconds",
	"rotor_last_success_timestamp_seconds",
	"rotor_verification_failures_total",
	"rotor_rollbacks_total",
	"rotor_audit_chain_valid",
}

// proposedMetrics are used by the alert rules but not exported yet; the
// rules file lists them apart, as proposals. None at the moment.
var proposedMetrics []string

// histograms export _bucket, _sum and _count series.
var histograms = []string{"rotor_rotation_step_duration_seconds"}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reportProblems(t *testing.T, what string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}

// problems collects findings.
type problems []string

func (p *problems) addf(format string, args ...any) { *p = append(*p, fmt.Sprintf(format, args...)) }

// ---------------------------------------------------------------------------
// Every YAML file

// yamlDocuments splits src into its documents, each re-encoded on its own
// so that it can be decoded by a YAML library with other rules (Kubernetes'
// sigs.k8s.io/yaml reads 0400 as octal, as kubectl does).
func yamlDocuments(src []byte) ([][]byte, error) {
	dec := yaml.NewDecoder(bytes.NewReader(src))
	var docs [][]byte
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(n.Content) == 0 || (n.Content[0].Kind == yaml.ScalarNode && n.Content[0].Tag == "!!null") {
			continue // an empty document, e.g. after a trailing ---
		}
		b, err := yaml.Marshal(&n)
		if err != nil {
			return nil, err
		}
		docs = append(docs, b)
	}
}

func TestEveryYAMLFileParses(t *testing.T) {
	var files []string
	for _, dir := range []string{".", "../examples/.github", "../.github"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ext := filepath.Ext(p); !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// The files the other tests rely on must be among them.
	for _, want := range []string{workflowFile, releaseWorkflowFile, ciConfigFile, alertsFile, "kubernetes/common.yaml", "kubernetes/daemon.yaml", "kubernetes/cronjob.yaml", injectorFile} {
		if !slices.Contains(files, filepath.Clean(want)) {
			t.Errorf("%s not found", want)
		}
	}
	for _, f := range files {
		docs, err := yamlDocuments(readFile(t, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if len(docs) == 0 {
			t.Errorf("%s: no YAML document", f)
		}
		for i, d := range docs {
			var v any
			if err := yaml.Unmarshal(d, &v); err != nil {
				t.Errorf("%s: document %d: %v", f, i+1, err)
			}
			if _, ok := v.(map[string]any); !ok {
				t.Errorf("%s: document %d is a %T, want a mapping", f, i+1, v)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// GitHub Actions workflow

type workflowStep struct {
	Name string            `yaml:"name"`
	ID   string            `yaml:"id"`
	If   string            `yaml:"if"`
	Uses string            `yaml:"uses"`
	Run  string            `yaml:"run"`
	With map[string]any    `yaml:"with"`
	Env  map[string]string `yaml:"env"`
}

type workflowJob struct {
	Permissions any            `yaml:"permissions"`
	Environment any            `yaml:"environment"`
	Concurrency any            `yaml:"concurrency"`
	Steps       []workflowStep `yaml:"steps"`
}

type workflow struct {
	On struct {
		Schedule         []struct{ Cron string } `yaml:"schedule"`
		WorkflowDispatch *struct {
			Inputs map[string]struct {
				Type    string   `yaml:"type"`
				Options []string `yaml:"options"`
			} `yaml:"inputs"`
		} `yaml:"workflow_dispatch"`
	} `yaml:"on"`
	Permissions any                    `yaml:"permissions"`
	Concurrency any                    `yaml:"concurrency"`
	Env         map[string]string      `yaml:"env"`
	Jobs        map[string]workflowJob `yaml:"jobs"`
}

func parseWorkflow(src []byte) (*workflow, error) {
	var w workflow
	if err := yaml.Unmarshal(src, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// permissionMap returns a permissions block as a map; "read-all" and
// "write-all" come back as a single "*" entry.
func permissionMap(v any) (map[string]string, bool) {
	switch p := v.(type) {
	case nil:
		return nil, false
	case string:
		return map[string]string{"*": p}, true
	case map[string]any:
		m := map[string]string{}
		for k, v := range p {
			m[k] = fmt.Sprint(v)
		}
		return m, true
	}
	return nil, false
}

// concurrencyOf returns the group and cancel-in-progress of a concurrency
// block (a string is a group that cancels nothing).
func concurrencyOf(v any) (group string, cancel any, ok bool) {
	switch c := v.(type) {
	case string:
		return c, false, c != ""
	case map[string]any:
		g, _ := c["group"].(string)
		return g, c["cancel-in-progress"], g != ""
	}
	return "", nil, false
}

var (
	exprRef       = regexp.MustCompile(`\$\{\{[^}]*\}\}`)
	untrustedExpr = regexp.MustCompile(`\b(inputs|github\.event)\.`)
)

// checkWorkflow checks what the workflow must guarantee: when it runs, what
// it runs, with which permissions, never two at once, inputs never pasted
// into scripts, actions pinned, and the audit log verified at the end.
func checkWorkflow(src []byte) []string {
	var p problems
	w, err := parseWorkflow(src)
	if err != nil {
		return []string{err.Error()}
	}
	if len(w.On.Schedule) == 0 {
		p.addf("no on.schedule: the daily run is missing")
	}
	for _, s := range w.On.Schedule {
		if len(strings.Fields(s.Cron)) != 5 {
			p.addf("schedule cron %q does not have 5 fields", s.Cron)
		}
	}
	if w.On.WorkflowDispatch == nil {
		p.addf("no on.workflow_dispatch")
	} else {
		in := w.On.WorkflowDispatch.Inputs
		if a, ok := in["action"]; !ok || a.Type != "choice" || !slices.Equal(a.Options, []string{"rotate", "rollback", "status"}) {
			p.addf("workflow_dispatch input action must be a choice of rotate, rollback, status; got %+v", in["action"])
		}
		if _, ok := in["secret"]; !ok {
			p.addf("workflow_dispatch has no secret input")
		}
	}
	group, cancel, ok := concurrencyOf(w.Concurrency)
	if !ok {
		p.addf("no workflow-level concurrency group: two runs could overlap")
	} else if cancel != false {
		p.addf("concurrency group %q: cancel-in-progress must be false, got %v", group, cancel)
	}
	if len(w.Jobs) == 0 {
		p.addf("no jobs")
	}

	var runs []string // every run script, in order
	verified := false
	for name, j := range w.Jobs {
		verifyIndex, lastActionIndex := -1, -1
		perms, ok := permissionMap(j.Permissions)
		if !ok {
			perms, ok = permissionMap(w.Permissions)
		}
		if !ok {
			p.addf("job %s: no permissions block: it would get the repository's default token permissions", name)
		}
		if perms["id-token"] != "write" {
			p.addf("job %s: permissions.id-token must be write (rotor's Vault login), got %q", name, perms["id-token"])
		}
		if perms["contents"] != "read" {
			p.addf("job %s: permissions.contents must be read, got %q", name, perms["contents"])
		}
		for k, v := range perms {
			if v == "write-all" || (v == "write" && k != "id-token") {
				p.addf("job %s: permission %s: %s is more than rotor needs", name, k, v)
			}
		}
		switch env := j.Environment.(type) {
		case string:
			if env == "" {
				p.addf("job %s: empty environment", name)
			}
		case map[string]any:
			if env["name"] == nil || env["name"] == "" {
				p.addf("job %s: environment without a name", name)
			}
		default:
			p.addf("job %s: no environment: production secrets and the Vault role's sub claim need one", name)
		}
		for i, s := range j.Steps {
			if s.Uses != "" {
				at := strings.LastIndex(s.Uses, "@")
				if at < 0 {
					p.addf("job %s step %q: action %s is not pinned to a version", name, s.Name, s.Uses)
				} else if ref := s.Uses[at+1:]; slices.Contains([]string{"main", "master", "latest", "HEAD"}, ref) {
					p.addf("job %s step %q: action %s follows a branch, not a version", name, s.Name, s.Uses)
				}
			}
			if s.Run == "" {
				continue
			}
			runs = append(runs, s.Run)
			for _, ref := range exprRef.FindAllString(s.Run, -1) {
				if untrustedExpr.MatchString(ref) {
					p.addf("job %s step %q: %s is pasted into the script; pass it through env (script injection)", name, s.Name, ref)
				}
			}
			if strings.Contains(s.Run, "rotor audit verify") {
				verifyIndex = i
				if !strings.Contains(s.If, "always()") && !strings.Contains(s.If, "!cancelled()") {
					p.addf("job %s: the audit verify step must also run after a failed step (if: !cancelled() or always()), has if: %q", name, s.If)
				}
			}
			for _, cmd := range []string{"rotor rotate", "rotor rollback", "rotor revoke"} {
				if strings.Contains(s.Run, cmd) {
					lastActionIndex = max(lastActionIndex, i)
				}
			}
		}
		if verifyIndex >= 0 && verifyIndex < lastActionIndex {
			p.addf("job %s: rotor audit verify runs before a later rotate/rollback/revoke step", name)
		}
		verified = verified || verifyIndex >= 0
	}
	all := strings.Join(runs, "\n")
	if !regexp.MustCompile(`go install "?` + regexp.QuoteMeta(rotorModulePath) + `@`).MatchString(all) {
		p.addf("no step installs rotor with go install %s@<version>", rotorModulePath)
	}
	for _, want := range []string{
		"rotor rotate --due",
		"rotor revoke --expired",
		`rotor rotate "$SECRET_NAME"`,
		`rotor rollback "$SECRET_NAME"`,
		"rotor status",
		"rotor audit verify",
	} {
		if !strings.Contains(all, want) {
			p.addf("no step runs %q", want)
		}
	}
	if !verified {
		p.addf("rotor audit verify never runs")
	}
	return p
}

func TestWorkflowStructure(t *testing.T) {
	reportProblems(t, workflowFile, checkWorkflow(readFile(t, workflowFile)))
}

// actionlintFindings lints a workflow with actionlint's library, with
// shellcheck and pyflakes when they are installed.
func actionlintFindings(t *testing.T, name string, src []byte) []string {
	t.Helper()
	opts := &actionlint.LinterOptions{}
	if p, err := exec.LookPath("shellcheck"); err == nil {
		opts.Shellcheck = p
	} else {
		t.Log("shellcheck not installed: run scripts are not checked")
	}
	if p, err := exec.LookPath("pyflakes"); err == nil {
		opts.Pyflakes = p
	}
	var out bytes.Buffer
	l, err := actionlint.NewLinter(&out, opts)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := l.Lint(name, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, e := range errs {
		found = append(found, fmt.Sprintf("%d:%d: %s [%s]", e.Line, e.Column, e.Message, e.Kind))
	}
	return found
}

func TestWorkflowActionlint(t *testing.T) {
	reportProblems(t, workflowFile, actionlintFindings(t, workflowFile, readFile(t, workflowFile)))
}

// ---------------------------------------------------------------------------
// The rotor.yaml the workflow uses

// checkCIConfig loads the sample config as rotor would from
// .github/rotor/rotor.yaml in a repository checked out at root, and checks
// it against the workflow: Vault with GitHub OIDC (jwt) login, the audit
// chain shared in Vault (nothing carried between runs), and the salt where
// the workflow writes it.
func checkCIConfig(cfgSrc, workflowSrc []byte) []string {
	var p problems
	w, err := parseWorkflow(workflowSrc)
	if err != nil {
		return []string{err.Error()}
	}
	const root = "/checkout"
	cfgPath := w.Env["ROTOR_CONFIG"]
	saltFile := w.Env["ROTOR_SALT_FILE"]
	if cfgPath == "" || saltFile == "" {
		return []string{"workflow env must set ROTOR_CONFIG and ROTOR_SALT_FILE"}
	}
	cfg, err := config.Parse(cfgSrc, path.Join(root, path.Dir(cfgPath)))
	if err != nil {
		return []string{"rotor rejects the config: " + err.Error()}
	}
	if cfg.Store.Type != "vault" || cfg.Store.Vault == nil {
		p.addf("store.type is %q, want vault", cfg.Store.Type)
	} else {
		a := cfg.Store.Vault.Auth
		if a.Method != vault.AuthJWT || a.Role != "rotor-ci" || a.JWTFile != "" {
			p.addf("vault auth is %s role %q jwt_file %q; want jwt, role rotor-ci, and the GitHub ID token (no jwt_file)", a.Method, a.Role, a.JWTFile)
		}
		if a.Audience == "" {
			p.addf("vault auth has no audience: the Vault role should bind one")
		}
	}
	if !slices.ContainsFunc(cfg.Secrets, func(s config.Secret) bool { return s.Name == "clerk-secret-key" && s.Provider == "clerk" }) {
		p.addf("no secret clerk-secret-key with provider clerk")
	}
	if cfg.Audit.Chain != "store" || cfg.Audit.Local {
		p.addf("audit.chain is %q (local copy %v); want the chain shared in Vault (store), so every run appends to one chain", cfg.Audit.Chain, cfg.Audit.Local)
	}
	if got, want := filepath.ToSlash(cfg.Audit.SaltFile), path.Join(root, saltFile); got != want {
		p.addf("audit.salt_file resolves to %s; the workflow writes the salt to %s", got, want)
	}
	// Runs share the chain through Vault: nothing is carried between them,
	// and above all not the salt.
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "actions/upload-artifact@") || strings.HasPrefix(s.Uses, "actions/download-artifact@") {
				p.addf("step %q moves files between runs; the audit chain lives in Vault", s.Name)
			}
		}
	}
	return p
}

func TestCIConfig(t *testing.T) {
	reportProblems(t, ciConfigFile, checkCIConfig(readFile(t, ciConfigFile), readFile(t, workflowFile)))
}

// ---------------------------------------------------------------------------
// Kubernetes

// manifests holds the decoded objects of deploy/kubernetes.
type manifests struct {
	deployments  []*appsv1.Deployment
	cronJobs     []*batchv1.CronJob
	services     []*corev1.Service
	configMaps   []*corev1.ConfigMap
	accounts     []*corev1.ServiceAccount
	roles        []*rbacv1.Role
	roleBindings []*rbacv1.RoleBinding
	kustomize    []string // resources of kustomization.yaml
	files        map[string]bool
}

// decodeManifests strictly decodes every document of files (name →
// content) into its Kubernetes type: a misspelt or misplaced field is an
// error, as `kubectl apply --validate=strict` would report it.
func decodeManifests(files map[string][]byte) (*manifests, problems) {
	var p problems
	m := &manifests{files: map[string]bool{}}
	for name, src := range files {
		m.files[name] = true
		docs, err := yamlDocuments(src)
		if err != nil {
			p.addf("%s: %v", name, err)
			continue
		}
		for i, doc := range docs {
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := sigsyaml.Unmarshal(doc, &meta); err != nil {
				p.addf("%s document %d: %v", name, i+1, err)
				continue
			}
			var obj any
			switch meta.APIVersion + " " + meta.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 ServiceAccount":
				o := &corev1.ServiceAccount{}
				m.accounts, obj = append(m.accounts, o), o
			case "v1 ConfigMap":
				o := &corev1.ConfigMap{}
				m.configMaps, obj = append(m.configMaps, o), o
			case "v1 Service":
				o := &corev1.Service{}
				m.services, obj = append(m.services, o), o
			case "v1 PersistentVolumeClaim":
				obj = &corev1.PersistentVolumeClaim{}
			case "apps/v1 Deployment":
				o := &appsv1.Deployment{}
				m.deployments, obj = append(m.deployments, o), o
			case "batch/v1 CronJob":
				o := &batchv1.CronJob{}
				m.cronJobs, obj = append(m.cronJobs, o), o
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			case "rbac.authorization.k8s.io/v1 Role":
				o := &rbacv1.Role{}
				m.roles, obj = append(m.roles, o), o
			case "rbac.authorization.k8s.io/v1 RoleBinding":
				o := &rbacv1.RoleBinding{}
				m.roleBindings, obj = append(m.roleBindings, o), o
			case "kustomize.config.k8s.io/v1beta1 Kustomization":
				var k struct {
					APIVersion string   `json:"apiVersion"`
					Kind       string   `json:"kind"`
					Resources  []string `json:"resources"`
				}
				if err := decodeStrict(doc, &k); err != nil {
					p.addf("%s: %v", name, err)
				}
				m.kustomize = append(m.kustomize, k.Resources...)
				continue
			default:
				p.addf("%s document %d: unexpected %s %s (add it to decodeManifests to check it)", name, i+1, meta.APIVersion, meta.Kind)
				continue
			}
			if err := decodeStrict(doc, obj); err != nil {
				p.addf("%s document %d (%s): %v", name, i+1, meta.Kind, err)
			}
		}
	}
	return m, p
}

// decodeStrict decodes a YAML document into obj the way the API server
// reads a request: field names are case-sensitive, and unknown or
// duplicate fields are errors.
func decodeStrict(doc []byte, obj any) error {
	js, err := sigsyaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := k8sjson.UnmarshalStrict(js, obj, k8sjson.DisallowDuplicateFields, k8sjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

func readKubernetesFiles(t *testing.T) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(kubernetesDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if ext := filepath.Ext(e.Name()); ext == ".yaml" || ext == ".yml" {
			files[e.Name()] = readFile(t, filepath.Join(kubernetesDir, e.Name()))
		}
	}
	return files
}

// rotorContainer returns the container named rotor.
func rotorContainer(spec *corev1.PodSpec) *corev1.Container {
	for i := range spec.Containers {
		if spec.Containers[i].Name == "rotor" {
			return &spec.Containers[i]
		}
	}
	return nil
}

// flagValue returns the value of --name in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// mountFor returns the volume mount of c under which file lies (the
// deepest one), or nil.
func mountFor(c *corev1.Container, file string) *corev1.VolumeMount {
	var best *corev1.VolumeMount
	for i := range c.VolumeMounts {
		vm := &c.VolumeMounts[i]
		if strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") && (best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = vm
		}
	}
	return best
}

func volumeNamed(spec *corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// checkPodSecurity checks every container (init containers included) of a
// pod: non-root, no privilege escalation, read-only root file system, no
// capabilities, the RuntimeDefault seccomp profile, resource requests and
// limits.
func checkPodSecurity(where string, spec *corev1.PodSpec) []string {
	var p problems
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		p.addf("%s: pod runAsUser is 0", where)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		p.addf("%s: shares a host namespace", where)
	}
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	if len(spec.Containers) == 0 {
		p.addf("%s: no containers", where)
	}
	for _, c := range all {
		w := where + " container " + c.Name
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		nonRoot := (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsNonRoot == nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
		if !nonRoot {
			p.addf("%s: runAsNonRoot is not true", w)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			p.addf("%s: runAsUser is 0", w)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.addf("%s: allowPrivilegeEscalation is not false", w)
		}
		if sc.Privileged != nil && *sc.Privileged {
			p.addf("%s: privileged", w)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.addf("%s: readOnlyRootFilesystem is not true", w)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			p.addf("%s: capabilities do not drop ALL", w)
		} else if len(sc.Capabilities.Add) > 0 {
			p.addf("%s: adds capabilities %v", w, sc.Capabilities.Add)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			p.addf("%s: seccomp profile is not RuntimeDefault", w)
		}
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if _, ok := c.Resources.Requests[r]; !ok {
				p.addf("%s: no %s request", w, r)
			}
			if _, ok := c.Resources.Limits[r]; !ok {
				p.addf("%s: no %s limit", w, r)
			}
		}
	}
	return p
}

// checkRotorPod checks the rotor container of a pod against the rotor.yaml
// it is given: the config is mounted where --config points, and every path
// rotor reads or writes is on a volume (the root file system is read-only),
// a local audit log and its anchor, if any, on writable ones. It returns the parsed config.
func checkRotorPod(where, ns string, spec *corev1.PodSpec, m *manifests) (*config.Config, []string) {
	var p problems
	c := rotorContainer(spec)
	if c == nil {
		return nil, []string{where + ": no container named rotor"}
	}
	cfgPath := flagValue(c.Args, "--config")
	if cfgPath == "" {
		p.addf("%s: rotor is not given --config", where)
		return nil, p
	}
	vm := mountFor(c, cfgPath)
	if vm == nil {
		p.addf("%s: nothing is mounted at %s", where, path.Dir(cfgPath))
		return nil, p
	}
	vol := volumeNamed(spec, vm.Name)
	if vol == nil || vol.ConfigMap == nil {
		p.addf("%s: %s is not mounted from a ConfigMap", where, cfgPath)
		return nil, p
	}
	key := strings.TrimPrefix(cfgPath, strings.TrimSuffix(vm.MountPath, "/")+"/")
	for _, it := range vol.ConfigMap.Items {
		if it.Path == key {
			key = it.Key
		}
	}
	var src string
	for _, cm := range m.configMaps {
		if cm.Name == vol.ConfigMap.Name && cm.Namespace == ns {
			src = cm.Data[key]
		}
	}
	if src == "" {
		p.addf("%s: ConfigMap %s has no key %s", where, vol.ConfigMap.Name, key)
		return nil, p
	}
	cfg, err := config.Parse([]byte(src), path.Dir(cfgPath))
	if err != nil {
		p.addf("%s: rotor rejects the ConfigMap's rotor.yaml: %v", where, err)
		return nil, p
	}
	files := map[string]bool{ // path → must be writable
		cfg.Audit.SaltFile: false,
	}
	if cfg.Audit.Chain == "file" || cfg.Audit.Local {
		files[cfg.Audit.Path], files[cfg.Audit.Anchor] = true, true
	}
	if v := cfg.Store.Vault; v != nil && v.Auth.JWTFile != "" && v.Auth.JWTFile != vault.DefaultKubernetesJWTFile {
		files[v.Auth.JWTFile] = false
	}
	for f, writable := range files {
		vm := mountFor(c, f)
		switch {
		case vm == nil:
			p.addf("%s: %s is on the read-only root file system", where, f)
		case writable && vm.ReadOnly:
			p.addf("%s: %s must be writable but its volume %s is read-only", where, f, vm.Name)
		case volumeNamed(spec, vm.Name) == nil:
			p.addf("%s: volume %s is not defined", where, vm.Name)
		}
	}
	return cfg, p
}

func probePath(pr *corev1.Probe) string {
	if pr == nil || pr.HTTPGet == nil {
		return ""
	}
	return pr.HTTPGet.Path
}

// portNumber resolves a probe or Service target port against c's ports.
func portNumber(c *corev1.Container, port intstr.IntOrString) int32 {
	if port.Type == intstr.Int {
		return port.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// checkServerConfig checks the server: block of a daemon's rotor.yaml
// against its container: the API listens off loopback (the kubelet and the
// Service reach the pod's IP) on the container's port, and with TLS, whose
// files are mounted, unless allow_plaintext says a proxy terminates it
// (rotor refuses plain HTTP off loopback otherwise).
func checkServerConfig(where string, cfg *config.Config, c *corev1.Container) []string {
	var p problems
	host, port, err := net.SplitHostPort(cfg.Server.Listen)
	if err != nil {
		return []string{fmt.Sprintf("%s: server.listen %q: %v", where, cfg.Server.Listen, err)}
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		p.addf("%s: server.listen %s is loopback: probes and the Service cannot reach it", where, cfg.Server.Listen)
	}
	if port != strconv.Itoa(daemonPort) {
		p.addf("%s: the API listens on port %s, the container exposes %d", where, port, daemonPort)
	}
	tls := cfg.Server.TLS
	if tls.CertFile == "" && !cfg.Server.AllowPlaintext {
		p.addf("%s: no server.tls and no allow_plaintext: rotor refuses plain HTTP off loopback", where)
	}
	for _, f := range []string{tls.CertFile, tls.KeyFile} {
		if f != "" && mountFor(c, f) == nil {
			p.addf("%s: %s is on the read-only root file system, not on a mounted volume", where, f)
		}
	}
	if !cfg.Server.MetricsOpen {
		p.addf("%s: server.metrics_open is false: Prometheus would need a token to scrape /metrics", where)
	}
	return p
}

func checkKubernetes(files map[string][]byte) []string {
	m, p := decodeManifests(files)
	if len(p) > 0 {
		return p
	}
	for _, r := range m.kustomize {
		if !m.files[r] {
			p.addf("kustomization.yaml lists %s, which does not exist", r)
		}
	}
	var configs []*config.Config // what the pods run, for the RBAC check
	var hookPods []string        // their service accounts, namespace/name

	if len(m.deployments) == 0 {
		p.addf("no Deployment")
	}
	for _, d := range m.deployments {
		where := "Deployment " + d.Name
		spec := &d.Spec.Template.Spec
		p = append(p, checkPodSecurity(where, spec)...)
		cfg, cp := checkRotorPod(where, d.Namespace, spec, m)
		p = append(p, cp...)
		if cfg != nil {
			configs = append(configs, cfg)
			hookPods = append(hookPods, d.Namespace+"/"+spec.ServiceAccountName)
			if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken && hasKubernetesHooks(cfg) {
				p.addf("%s: automountServiceAccountToken is false but the config restarts Deployments", where)
			}
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			p.addf("%s: want at least 2 replicas", where)
		}
		c := rotorContainer(spec)
		if c == nil {
			continue
		}
		if len(c.Args) == 0 || c.Args[0] != "daemon" {
			p.addf("%s: rotor runs %v, want daemon", where, c.Args)
		}
		if !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == daemonPort }) {
			p.addf("%s: no container port %d", where, daemonPort)
		}
		wantScheme := corev1.URISchemeHTTP
		if cfg != nil && cfg.Server.TLS.CertFile != "" {
			wantScheme = corev1.URISchemeHTTPS
		}
		for _, pr := range []struct {
			kind, want string
			probe      *corev1.Probe
		}{{"liveness", livenessPath, c.LivenessProbe}, {"readiness", readinessPath, c.ReadinessProbe}} {
			if got := probePath(pr.probe); got != pr.want {
				p.addf("%s: %s probe path is %q, want %s", where, pr.kind, got, pr.want)
				continue
			}
			if port := portNumber(c, pr.probe.HTTPGet.Port); port != daemonPort {
				p.addf("%s: %s probe port is %d, want %d", where, pr.kind, port, daemonPort)
			}
			if got := cmp.Or(pr.probe.HTTPGet.Scheme, corev1.URISchemeHTTP); got != wantScheme {
				p.addf("%s: %s probe scheme is %s, but the API serves %s", where, pr.kind, got, wantScheme)
			}
		}
		if cfg != nil {
			p = append(p, checkServerConfig(where, cfg, c)...)
		}
		if spec.ServiceAccountName == "" || !slices.ContainsFunc(m.accounts, func(a *corev1.ServiceAccount) bool {
			return a.Name == spec.ServiceAccountName && a.Namespace == d.Namespace
		}) {
			p.addf("%s: service account %q is not defined in %s", where, spec.ServiceAccountName, d.Namespace)
		}
		// A Service exposes the API port of these pods.
		exposed := false
		for _, s := range m.services {
			if s.Namespace != d.Namespace || len(s.Spec.Selector) == 0 {
				continue
			}
			selects := true
			for k, v := range s.Spec.Selector {
				selects = selects && d.Spec.Template.Labels[k] == v
			}
			for _, sp := range s.Spec.Ports {
				if selects && portNumber(c, sp.TargetPort) == daemonPort {
					exposed = true
				}
			}
		}
		if !exposed {
			p.addf("%s: no Service selects its pods on port %d", where, daemonPort)
		}
	}

	rotates := false
	if len(m.cronJobs) == 0 {
		p.addf("no CronJob")
	}
	for _, cj := range m.cronJobs {
		where := "CronJob " + cj.Name
		if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
			p.addf("%s: concurrencyPolicy is %q, want Forbid", where, cj.Spec.ConcurrencyPolicy)
		}
		if len(strings.Fields(cj.Spec.Schedule)) != 5 {
			p.addf("%s: schedule %q", where, cj.Spec.Schedule)
		}
		spec := &cj.Spec.JobTemplate.Spec.Template.Spec
		p = append(p, checkPodSecurity(where, spec)...)
		cfg, cp := checkRotorPod(where, cj.Namespace, spec, m)
		p = append(p, cp...)
		c := rotorContainer(spec)
		if c != nil && len(c.Args) >= 2 && c.Args[0] == "rotate" && c.Args[1] == "--due" {
			rotates = true
			if cfg != nil {
				configs = append(configs, cfg)
				hookPods = append(hookPods, cj.Namespace+"/"+spec.ServiceAccountName)
				if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken && hasKubernetesHooks(cfg) {
					p.addf("%s: automountServiceAccountToken is false but the config restarts Deployments", where)
				}
			}
		}
	}
	if !rotates {
		p.addf("no CronJob runs rotor rotate --due")
	}

	// RBAC: least privilege, and enough for every kubernetes reload hook.
	for _, r := range m.roles {
		for _, rule := range r.Rules {
			for _, v := range slices.Concat(rule.Verbs, rule.Resources, rule.APIGroups) {
				if v == "*" {
					p.addf("Role %s/%s: wildcard in %+v", r.Namespace, r.Name, rule)
				}
			}
			for _, v := range rule.Verbs {
				if !slices.Contains([]string{"get", "patch"}, v) {
					p.addf("Role %s/%s: verb %s is more than the reload trigger needs (get, patch)", r.Namespace, r.Name, v)
				}
			}
		}
	}
	for i, cfg := range configs {
		for _, s := range cfg.Secrets {
			for _, h := range s.Reload {
				if h.Kubernetes == nil {
					continue
				}
				if !rbacAllows(m, hookPods[i], h.Kubernetes.Namespace, h.Kubernetes.Deployment) {
					p.addf("secret %s restarts deployment %s/%s, but service account %s may not get and patch it",
						s.Name, h.Kubernetes.Namespace, h.Kubernetes.Deployment, hookPods[i])
				}
			}
		}
	}
	return p
}

func hasKubernetesHooks(cfg *config.Config) bool {
	for _, s := range cfg.Secrets {
		for _, h := range s.Reload {
			if h.Kubernetes != nil {
				return true
			}
		}
	}
	return false
}

// rbacAllows reports whether a RoleBinding in ns grants the service
// account sa (namespace/name) a Role allowing get and patch on apps
// deployments/name.
func rbacAllows(m *manifests, sa, ns, name string) bool {
	saNS, saName, _ := strings.Cut(sa, "/")
	for _, rb := range m.roleBindings {
		if rb.Namespace != ns || rb.RoleRef.Kind != "Role" {
			continue
		}
		if !slices.ContainsFunc(rb.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == saName && s.Namespace == saNS
		}) {
			continue
		}
		for _, r := range m.roles {
			if r.Namespace != ns || r.Name != rb.RoleRef.Name {
				continue
			}
			verbs := map[string]bool{}
			for _, rule := range r.Rules {
				if slices.Contains(rule.APIGroups, "apps") && slices.Contains(rule.Resources, "deployments") &&
					(len(rule.ResourceNames) == 0 || slices.Contains(rule.ResourceNames, name)) {
					for _, v := range rule.Verbs {
						verbs[v] = true
					}
				}
			}
			if verbs["get"] && verbs["patch"] {
				return true
			}
		}
	}
	return false
}

func TestKubernetesManifests(t *testing.T) {
	reportProblems(t, kubernetesDir, checkKubernetes(readKubernetesFiles(t)))
}

// ---------------------------------------------------------------------------
// Prometheus rules

type ruleGroups struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

var (
	promDuration = regexp.MustCompile(`^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$`)
	rotorMetric  = regexp.MustCompile(`\brotor_[a-z0-9_]+`)
)

// balanced reports whether the brackets of expr pair up (outside quotes).
func balanced(expr string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	quote := rune(0)
	for _, r := range expr {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '`':
			quote = r
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && quote == 0
}

// checkAlerts checks the rules file: Prometheus rule groups whose rules
// are alerts with an expression, a severity and a summary, using only the
// metrics rotor exports (or proposes, listed as such), all listed in the
// file's header comment.
func checkAlerts(src []byte) []string {
	var p problems
	var rg ruleGroups
	dec := yaml.NewDecoder(bytes.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&rg); err != nil {
		return []string{"not Prometheus rule groups: " + err.Error()}
	}
	if len(rg.Groups) == 0 {
		p.addf("no rule groups")
	}
	var header strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		header.WriteString(l + "\n")
	}
	for _, name := range slices.Concat(knownMetrics, proposedMetrics) {
		if !regexp.MustCompile(`\b` + name + `\b`).MatchString(header.String()) {
			p.addf("the header comment does not list %s", name)
		}
	}
	groups, alerts := map[string]bool{}, map[string]bool{}
	used := map[string]bool{}
	for _, g := range rg.Groups {
		if g.Name == "" || groups[g.Name] {
			p.addf("group name %q is empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			p.addf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			if r.Alert == "" || r.Record != "" {
				p.addf("group %s: rule %q is not an alert", g.Name, r.Alert+r.Record)
				continue
			}
			if alerts[r.Alert] {
				p.addf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				p.addf("alert %s has no expr", r.Alert)
			}
			if !balanced(r.Expr) {
				p.addf("alert %s: unbalanced brackets in %q", r.Alert, r.Expr)
			}
			if r.For != "" && !promDuration.MatchString(r.For) {
				p.addf("alert %s: for %q is not a Prometheus duration", r.Alert, r.For)
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				p.addf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				p.addf("alert %s has no summary annotation", r.Alert)
			}
			for _, name := range rotorMetric.FindAllString(r.Expr, -1) {
				base := name
				for _, h := range histograms {
					for _, suffix := range []string{"_bucket", "_sum", "_count"} {
						if name == h+suffix {
							base = h
						}
					}
				}
				if !slices.Contains(knownMetrics, base) && !slices.Contains(proposedMetrics, base) {
					p.addf("alert %s uses %s, which rotor does not export", r.Alert, name)
				}
				used[base] = true
			}
		}
	}
	// What the rules must cover: overdue keys, failing rotations, unrevoked
	// previous keys, the audit chain, the daemon being down.
	for _, want := range []string{"rotor_key_age_seconds", "rotor_rotation_interval_seconds", "rotor_rotations_total", "rotor_previous_expires_seconds", "rotor_audit_chain_valid"} {
		if !used[want] {
			p.addf("no alert uses %s", want)
		}
	}
	if !strings.Contains(string(src), `up{job="rotor"}`) {
		p.addf(`no alert on up{job="rotor"} (daemon down)`)
	}
	return p
}

func TestPrometheusRules(t *testing.T) {
	src := readFile(t, alertsFile)
	reportProblems(t, alertsFile, checkAlerts(src))
	if promtool, err := exec.LookPath("promtool"); err == nil {
		out, err := exec.Command(promtool, "check", "rules", alertsFile).CombinedOutput()
		if err != nil {
			t.Errorf("promtool check rules: %v\n%s", err, out)
		}
	}
}

// ---------------------------------------------------------------------------
// Dockerfile

// dockerInstructions returns the instructions of a Dockerfile, with line
// continuations joined and comments dropped.
func dockerInstructions(src []byte) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(string(src), "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if s, ok := strings.CutSuffix(t, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(t)
		if cur.Len() > 0 {
			out = append(out, cur.String())
		}
		cur.Reset()
	}
	return out
}

// localModules returns the directories, relative to the repository root,
// that rotor's go.mod replaces modules with (the SDK module): the image
// build resolves the build list from go.mod before it copies the sources,
// so it needs their go.mod files at that point.
func localModules(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "mod", "edit", "-json", "../go.mod").Output()
	if err != nil {
		t.Fatalf("go mod edit -json ../go.mod: %v", err)
	}
	var mod struct {
		Replace []struct{ New struct{ Path string } }
	}
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatalf("go mod edit -json ../go.mod: %v", err)
	}
	var dirs []string
	for _, r := range mod.Replace {
		if p := r.New.Path; strings.HasPrefix(p, "./") || strings.HasPrefix(p, "../") {
			dirs = append(dirs, path.Clean(p))
		}
	}
	if len(dirs) == 0 {
		t.Fatal("rotor's go.mod replaces no module with a directory: where is the SDK module?")
	}
	return dirs
}

// checkDockerfile checks the Dockerfile; localModules are the module
// directories go.mod replaces modules with (see [localModules]).
func checkDockerfile(src []byte, localModules []string) []string {
	var p problems
	var stages [][]string // instructions per stage
	for _, ins := range dockerInstructions(src) {
		if strings.HasPrefix(strings.ToUpper(ins), "FROM ") {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], ins)
		}
	}
	if len(stages) < 2 {
		return []string{fmt.Sprintf("%d build stages, want a multi-stage build", len(stages))}
	}
	build := strings.Join(stages[0], "\n")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "go build", "./cmd/rotor"} {
		if !strings.Contains(build, want) {
			p.addf("the build stage does not use %s", want)
		}
	}
	for _, dir := range localModules {
		copied := false
		for _, ins := range stages[0] {
			if strings.Contains(ins, "go mod download") {
				break
			}
			f := strings.Fields(ins)
			copied = copied || strings.EqualFold(f[0], "COPY") && slices.Contains(f[1:], dir+"/go.mod")
		}
		if !copied {
			p.addf("the build stage does not copy %s/go.mod before go mod download: go.mod replaces a module with %s", dir, dir)
		}
	}
	final := stages[len(stages)-1]
	from := strings.Fields(final[0])
	if len(from) < 2 || !(strings.Contains(from[1], "distroless/static") || from[1] == "scratch") {
		p.addf("final stage %q is not distroless/static or scratch", final[0])
	}
	var user, entrypoint string
	copied := false
	for _, ins := range final {
		upper := strings.ToUpper(ins)
		switch {
		case strings.HasPrefix(upper, "USER "):
			user = strings.TrimSpace(ins[5:])
		case strings.HasPrefix(upper, "ENTRYPOINT "):
			entrypoint = strings.TrimSpace(ins[11:])
		case strings.HasPrefix(upper, "COPY ") && strings.Contains(ins, "--from="):
			copied = true
		}
	}
	name, _, _ := strings.Cut(user, ":")
	if user == "" || name == "root" || name == "0" {
		p.addf("final stage USER is %q, want a non-root user", user)
	}
	if entrypoint != `["/rotor"]` {
		p.addf(`ENTRYPOINT is %s, want ["/rotor"]`, entrypoint)
	}
	if !copied {
		p.addf("final stage copies nothing from the build stage")
	}
	return p
}

func TestDockerfile(t *testing.T) {
	reportProblems(t, dockerfile, checkDockerfile(readFile(t, dockerfile), localModules(t)))
	// The build context is the repository root: local state must stay out.
	ignore := string(readFile(t, dockerfile+".dockerignore"))
	for _, want := range []string{"**/.rotor", ".git"} {
		if !slices.Contains(strings.Split(ignore, "\n"), want) {
			t.Errorf("%s.dockerignore does not exclude %s", dockerfile, want)
		}
	}
}

// ---------------------------------------------------------------------------
// systemd

// unitFile maps "Section.Key" to its values, in order.
type unitFile map[string][]string

func parseUnit(src []byte) (unitFile, error) {
	u := unitFile{}
	section := ""
	for i, l := range strings.Split(string(src), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" {
				return nil, fmt.Errorf("line %d: %q is not Key=Value in a section", i+1, l)
			}
			key := section + "." + strings.TrimSpace(k)
			u[key] = append(u[key], strings.TrimSpace(v))
		}
	}
	return u, nil
}

func (u unitFile) last(key string) string {
	if v := u[key]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

// serviceHardening are settings every rotor service unit must have.
var serviceHardening = map[string]string{
	"Service.NoNewPrivileges":        "yes",
	"Service.ProtectSystem":          "strict",
	"Service.ProtectHome":            "yes",
	"Service.PrivateTmp":             "yes",
	"Service.PrivateDevices":         "yes",
	"Service.CapabilityBoundingSet":  "",
	"Service.RestrictSUIDSGID":       "yes",
	"Service.ProtectKernelTunables":  "yes",
	"Service.ProtectKernelModules":   "yes",
	"Service.ProtectControlGroups":   "yes",
	"Service.MemoryDenyWriteExecute": "yes",
	"Service.UMask":                  "0077",
	"Service.StateDirectory":         "rotor",
}

func checkUnit(name string, src []byte) []string {
	var p problems
	u, err := parseUnit(src)
	if err != nil {
		return []string{err.Error()}
	}
	if strings.HasSuffix(name, ".timer") {
		if u.last("Timer.OnCalendar") == "" {
			p.addf("no OnCalendar")
		}
		if u.last("Timer.Persistent") != "yes" && u.last("Timer.Persistent") != "true" {
			p.addf("Persistent is not yes: a run missed while the machine was off is skipped")
		}
		if unit := u.last("Timer.Unit"); unit != "" && unit != strings.TrimSuffix(name, ".timer")+".service" {
			p.addf("the timer starts %s", unit)
		}
		if u.last("Install.WantedBy") != "timers.target" {
			p.addf("WantedBy is not timers.target")
		}
		return p
	}
	for k, want := range serviceHardening {
		vals, ok := u[k]
		if !ok || u.last(k) != want {
			p.addf("%s=%q, want %q", strings.TrimPrefix(k, "Service."), strings.Join(vals, " "), want)
		}
	}
	if u.last("Service.DynamicUser") != "yes" {
		if user := u.last("Service.User"); user == "" || user == "root" || user == "0" {
			p.addf("neither DynamicUser=yes nor a non-root User=")
		}
	}
	if _, ok := u["Service.SystemCallFilter"]; !ok {
		p.addf("no SystemCallFilter")
	}
	exec := strings.Join(u["Service.ExecStart"], "\n")
	if !strings.Contains(exec, "--config ") {
		p.addf("ExecStart does not pass --config")
	}
	if name == "rotor.service" && !strings.Contains(exec, " daemon") {
		p.addf("ExecStart does not run rotor daemon")
	}
	if name == "rotor-rotate.service" {
		if u.last("Service.Type") != "oneshot" {
			p.addf("Type is not oneshot")
		}
		if !strings.Contains(exec, "rotate --due") {
			p.addf("ExecStart does not run rotor rotate --due")
		}
	}
	return p
}

func TestSystemdUnits(t *testing.T) {
	names := []string{"rotor.service", "rotor-rotate.service", "rotor-rotate.timer"}
	for _, name := range names {
		reportProblems(t, name, checkUnit(name, readFile(t, filepath.Join(systemdDir, name))))
	}

	// With systemd at hand, let it parse the units too (an unknown or
	// misspelt directive is only a warning to systemd, so any output is a
	// failure) and rate their exposure.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: units checked by the parser above only")
		return
	}
	// systemd-analyze verify also checks that ExecStart's binary exists:
	// point it at a stand-in executable.
	dir := t.TempDir()
	stand, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		src := strings.ReplaceAll(string(readFile(t, filepath.Join(systemdDir, name))), "/usr/local/bin/rotor", stand)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range names {
		cmd := exec.Command(analyze, "verify", name)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", name, err, out)
		}
		if !strings.HasSuffix(name, ".service") {
			continue
		}
		cmd = exec.Command(analyze, "security", "--offline=true", "--threshold=20", "--no-pager", name)
		cmd.Dir = dir
		out, err = cmd.CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze security %s: exposure above 2.0 (or failed): %v\n%s", name, err, out)
		}
	}
}

// ---------------------------------------------------------------------------
// The checks catch breakage

// TestChecksCatchBreakage breaks each file in one way the checks above
// promise to catch, and asserts they do.
func TestChecksCatchBreakage(t *testing.T) {
	k8s := readKubernetesFiles(t)
	type target struct {
		file  string
		check func(t *testing.T, src []byte) []string
	}
	k8sCheck := func(file string) func(*testing.T, []byte) []string {
		return func(_ *testing.T, src []byte) []string {
			files := map[string][]byte{}
			for k, v := range k8s {
				files[k] = v
			}
			files[file] = src
			return checkKubernetes(files)
		}
	}
	var (
		workflowT = target{workflowFile, func(_ *testing.T, src []byte) []string { return checkWorkflow(src) }}
		lintT     = target{workflowFile, func(t *testing.T, src []byte) []string { return actionlintFindings(t, workflowFile, src) }}
		ciT       = target{ciConfigFile, func(t *testing.T, src []byte) []string { return checkCIConfig(src, readFile(t, workflowFile)) }}
		commonT   = target{"kubernetes/common.yaml", k8sCheck("common.yaml")}
		daemonT   = target{"kubernetes/daemon.yaml", k8sCheck("daemon.yaml")}
		cronT     = target{"kubernetes/cronjob.yaml", k8sCheck("cronjob.yaml")}
		alertsT   = target{alertsFile, func(_ *testing.T, src []byte) []string { return checkAlerts(src) }}
		dockerT   = target{dockerfile, func(t *testing.T, src []byte) []string { return checkDockerfile(src, localModules(t)) }}
		serviceT  = target{"systemd/rotor.service", func(_ *testing.T, src []byte) []string { return checkUnit("rotor.service", src) }}
		oneshotT  = target{"systemd/rotor-rotate.service", func(_ *testing.T, src []byte) []string { return checkUnit("rotor-rotate.service", src) }}
		timerT    = target{"systemd/rotor-rotate.timer", func(_ *testing.T, src []byte) []string { return checkUnit("rotor-rotate.timer", src) }}
	)
	tests := []struct {
		name     string
		target   target
		old, new string // replace the first old with new
		want     string // a problem containing this
	}{
		{"workflow without id-token", workflowT, "      id-token: write\n", "", "id-token must be write"},
		{"workflow with a write token", workflowT, "      contents: read\n", "      contents: write\n", "permissions.contents must be read"},
		{"workflow without concurrency", workflowT, "concurrency:\n  group: rotor-production\n  cancel-in-progress: false\n", "", "no workflow-level concurrency group"},
		{"workflow cancelling runs", workflowT, "cancel-in-progress: false", "cancel-in-progress: true", "cancel-in-progress must be false"},
		{"workflow without schedule", workflowT, "  schedule:\n", "  push:\n", "no on.schedule"},
		{"workflow without environment", workflowT, "    environment: production\n", "", "no environment"},
		{"workflow pasting an input", workflowT, `rollback) rotor rollback "$SECRET_NAME" ;;`, `rollback) rotor rollback "${{ inputs.secret }}" ;;`, "pasted into the script"},
		{"workflow without audit verify", workflowT, "run: rotor audit verify", "run: rotor audit tail", "rotor audit verify never runs"},
		{"workflow skipping audit verify after failure", workflowT, "if: ${{ !cancelled() && steps.salt.outcome == 'success' }}\n        run: rotor audit verify", "run: rotor audit verify", "must also run after a failed step"},
		{"workflow following a branch", workflowT, "actions/checkout@v6", "actions/checkout@main", "follows a branch"},
		{"workflow without go install", workflowT, `go install "github.com/rotor-dev/rotor/cmd/rotor@${ROTOR_VERSION}"`, `go build ./...`, "go install"},
		{"actionlint: bad permission", lintT, "      id-token: write\n", "      id-token: writ\n", "permission"},
		{"actionlint: unknown action input", lintT, "persist-credentials: false", "persist-credential: false", "persist-credential"},
		{"actionlint: bad expression", lintT, "steps.salt.outcome == 'success' }}\n        run: rotor audit verify", "steps.salt.outcom == 'success' }}\n        run: rotor audit verify", "outcom"},
		{"config: unknown key", ciT, "      role: rotor-ci\n", "      role: rotor-ci\n      roles: x\n", "rotor rejects the config"},
		{"config: token auth", ciT, "      method: jwt\n      mount: jwt\n      role: rotor-ci\n      audience: https://vault.example.com\n", "      method: token\n", "want jwt"},
		{"config: audit chain on the runner", ciT, "  chain: store", "  chain: file", "audit.chain is \"file\""},
		{"config: salt elsewhere", ciT, "  salt_file: private/audit.salt", "  salt_file: audit/audit.salt", "audit.salt_file resolves to"},
		{"deployment as uid 0", daemonT, "        runAsNonRoot: true\n        runAsUser: 65532", "        runAsUser: 0", "pod runAsUser is 0"},
		{"deployment container may run as root", daemonT, "            runAsNonRoot: true\n            allowPrivilegeEscalation", "            runAsNonRoot: false\n            allowPrivilegeEscalation", "runAsNonRoot is not true"},
		{"deployment writable root", daemonT, "            readOnlyRootFilesystem: true\n            capabilities:\n              drop: [\"ALL\"]\n            seccompProfile:\n              type: RuntimeDefault\n          volumeMounts:\n            - name: config", "            readOnlyRootFilesystem: false\n            capabilities:\n              drop: [\"ALL\"]\n            seccompProfile:\n              type: RuntimeDefault\n          volumeMounts:\n            - name: config", "readOnlyRootFilesystem is not true"},
		{"deployment liveness path", daemonT, "              path: /healthz", "              path: /health", "liveness probe path"},
		{"deployment readiness path", daemonT, "              path: /readyz", "              path: /healthz", "readiness probe path"},
		{"deployment probe port", daemonT, "              path: /healthz\n              port: https", "              path: /healthz\n              port: 9090", "liveness probe port"},
		{"deployment probe over http", daemonT, "              path: /readyz\n              port: https\n              scheme: HTTPS", "              path: /readyz\n              port: https", "readiness probe scheme is HTTP"},
		{"api on loopback", commonT, `listen: ":8700"`, `listen: "127.0.0.1:8700"`, "loopback"},
		{"api on another port", commonT, `listen: ":8700"`, `listen: ":9000"`, "listens on port 9000"},
		{"api in plain http", commonT, "      tls:\n        cert_file: /var/run/rotor/tls/tls.crt\n        key_file: /var/run/rotor/tls/tls.key\n", "", "refuses plain HTTP"},
		{"api certificate not mounted", daemonT, "            - name: tls\n              mountPath: /var/run/rotor/tls\n              readOnly: true\n", "", "/var/run/rotor/tls/tls.crt is on the read-only root file system"},
		{"deployment one replica", daemonT, "  replicas: 2", "  replicas: 1", "at least 2 replicas"},
		{"deployment misspelt field", daemonT, "      serviceAccountName: rotor", "      serviceAccount_name: rotor", "unknown field"},
		{"deployment without limits", daemonT, "            limits:\n              cpu: 500m\n              memory: 256Mi\n", "", "no cpu limit"},
		{"deployment without the salt", daemonT, "            - name: salt\n              mountPath: /var/run/rotor/salt\n              readOnly: true\n", "", "is on the read-only root file system"},
		{"deployment not running daemon", daemonT, `args: ["daemon", "--config"`, `args: ["serve", "--config"`, "want daemon"},
		{"deployment config elsewhere", daemonT, `"--config", "/etc/rotor/rotor.yaml"`, `"--config", "/etc/rotor.yaml"`, "nothing is mounted"},
		{"service on another port", daemonT, "      port: 8700\n      targetPort: https", "      port: 8700\n      targetPort: 9090", "no Service selects"},
		{"cronjob allowing overlap", cronT, "  concurrencyPolicy: Forbid\n", "  concurrencyPolicy: Allow\n", "want Forbid"},
		{"cronjob without a policy", cronT, "  concurrencyPolicy: Forbid\n", "", "want Forbid"},
		{"cronjob not rotating", cronT, `args: ["rotate", "--due"`, `args: ["status", "--due"`, "no CronJob runs rotor rotate --due"},
		{"cronjob privilege escalation", cronT, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", "allowPrivilegeEscalation is not false"},
		{"rbac without patch", commonT, `verbs: ["get", "patch"]`, `verbs: ["get"]`, "may not get and patch"},
		{"rbac for another deployment", commonT, `resourceNames: ["web"]`, `resourceNames: ["api"]`, "may not get and patch"},
		{"rbac wildcard", commonT, `resources: ["deployments"]`, `resources: ["*"]`, "wildcard"},
		{"rbac too many verbs", commonT, `verbs: ["get", "patch"]`, `verbs: ["get", "patch", "delete"]`, "more than the reload trigger needs"},
		{"configmap invalid rotor.yaml", commonT, "        provider: clerk\n", "        provider: clerky\n", "rotor rejects"},
		{"alert with an unknown metric", alertsT, "max by (secret) (rotor_key_age_seconds)", "max by (secret) (rotor_key_age)", "rotor does not export"},
		{"alert without expr", alertsT, "expr: sum by (secret) (increase(rotor_rollbacks_total[1h])) > 0", "expression: sum by (secret) (increase(rotor_rollbacks_total[1h])) > 0", "not Prometheus rule groups"},
		{"alert unbalanced", alertsT, "expr: sum by (secret) (increase(rotor_rollbacks_total[1h])) > 0", "expr: sum by (secret) (increase(rotor_rollbacks_total[1h]) > 0", "unbalanced"},
		{"alert bad for", alertsT, "for: 1h", "for: 1 hour", "not a Prometheus duration"},
		{"alert header missing a metric", alertsT, "#   rotor_rollbacks_total{secret}", "#   rollbacks{secret}", "does not list rotor_rollbacks_total"},
		{"alerts not in groups", alertsT, "groups:\n", "rule_groups:\n", "not Prometheus rule groups"},
		{"dockerfile without the SDK module", dockerT, "COPY keyring/go.mod keyring/\n", "", "does not copy keyring/go.mod"},
		{"dockerfile as root", dockerT, "USER 65532:65532", "USER root", "non-root user"},
		{"dockerfile without USER", dockerT, "USER 65532:65532\n", "", "non-root user"},
		{"dockerfile single stage", dockerT, "FROM gcr.io/distroless/static-debian12:nonroot\nCOPY --from=build /out/rotor /rotor\n", "", "build stages"},
		{"dockerfile with cgo", dockerT, "CGO_ENABLED=0 ", "CGO_ENABLED=1 ", "CGO_ENABLED=0"},
		{"dockerfile other entrypoint", dockerT, `ENTRYPOINT ["/rotor"]`, `ENTRYPOINT /rotor`, "ENTRYPOINT"},
		{"unit without NoNewPrivileges", serviceT, "NoNewPrivileges=yes", "NoNewPrivileges=no", "NoNewPrivileges"},
		{"unit with writable system", serviceT, "\nProtectSystem=strict\n", "\nProtectSystem=full\n", "ProtectSystem"},
		{"unit as root", serviceT, "\nUser=rotor\n", "\nUser=root\n", "non-root User"},
		{"unit without state directory", serviceT, "StateDirectory=rotor\n", "", "StateDirectory"},
		{"oneshot not rotating", oneshotT, "rotor.yaml rotate --due", "rotor.yaml status", "rotor rotate --due"},
		{"oneshot as simple", oneshotT, "Type=oneshot", "Type=simple", "oneshot"},
		{"oneshot without NoNewPrivileges", oneshotT, "NoNewPrivileges=yes\n", "", "NoNewPrivileges"},
		{"timer not persistent", timerT, "Persistent=true", "Persistent=false", "Persistent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := string(readFile(t, tt.target.file))
			broken := strings.Replace(orig, tt.old, tt.new, 1)
			if broken == orig {
				t.Fatalf("%q not found in %s: update this case", tt.old, tt.target.file)
			}
			found := tt.target.check(t, []byte(broken))
			if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("no problem mentioning %q; found %q", tt.want, found)
			}
		})
	}
	t.Run("workflow verifying before rotating", func(t *testing.T) {
		orig := string(readFile(t, workflowFile))
		const verify = "      - name: Verify the audit log\n"
		i := strings.Index(orig, verify)
		j := strings.Index(orig, "      - name: Remove the audit salt")
		k := strings.Index(orig, "      - name: Rotate due secrets\n")
		if i < 0 || j < i || k < 0 || k > i {
			t.Fatal("steps not found in the expected order: update this case")
		}
		step := orig[i:j]
		broken := orig[:k] + step + orig[k:i] + orig[j:]
		found := checkWorkflow([]byte(broken))
		if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, "runs before a later") }) {
			t.Errorf("verify before rotate not reported; found %q", found)
		}
	})
	t.Run("actionlint: shellcheck finding", func(t *testing.T) {
		if _, err := exec.LookPath("shellcheck"); err != nil {
			t.Skip("shellcheck not installed")
		}
		orig := string(readFile(t, workflowFile))
		broken := strings.Replace(orig, `rm -f "$ROTOR_SALT_FILE"`, `rm -f $ROTOR_SALT_FILE`, 1)
		if broken == orig {
			t.Fatal("rm -f \"$ROTOR_SALT_FILE\" not found: update this case")
		}
		found := actionlintFindings(t, workflowFile, []byte(broken))
		if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, "SC2086") }) {
			t.Errorf("unquoted variable not reported; found %q", found)
		}
	})
	t.Run("deployment keeping capabilities", func(t *testing.T) {
		orig := string(readFile(t, daemonT.file))
		// Only in the rotor container: the init container's block comes first.
		i := strings.Index(orig, "      containers:")
		j := strings.Index(orig[i:], `drop: ["ALL"]`)
		if i < 0 || j < 0 {
			t.Fatal("rotor container's capabilities not found: update this case")
		}
		broken := orig[:i+j] + `add: ["NET_ADMIN"]` + orig[i+j+len(`drop: ["ALL"]`):]
		found := daemonT.check(t, []byte(broken))
		if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, "container rotor: capabilities do not drop ALL") }) {
			t.Errorf("no problem about the rotor container's capabilities; found %q", found)
		}
	})
}

// TestStrictDecodingRejectsUnknownNestedFields: a misspelt field deep in a
// pod spec is reported, not silently dropped.
func TestStrictDecodingRejectsUnknownNestedFields(t *testing.T) {
	doc := []byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: rotor\n          securityContext: {runAsNonroot: true}\n")
	_, p := decodeManifests(map[string][]byte{"x.yaml": doc})
	if len(p) == 0 || !strings.Contains(strings.Join(p, "\n"), "runAsNonroot") {
		t.Errorf("misspelt runAsNonroot not reported: %q", p)
	}
}
