package deploy_test

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"golang.org/x/tools/go/packages"
)

// The release: its workflow, the script that builds the archives, and the
// image the manifests run.
const (
	releaseWorkflowFile = "../.github/workflows/release.yml"
	releaseScript       = "../scripts/release.sh"
	// rotorImage is the repository the release workflow pushes to for
	// github.com/rotor-dev/rotor (ghcr.io/<owner>/rotor), and the one the
	// Kubernetes manifests run.
	rotorImage = "ghcr.io/rotor-dev/rotor"
)

// releaseTargets are the platforms a release ships binaries for.
var releaseTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"}

// releaseTag is what a release tag looks like: the script refuses others,
// and the workflow's tag filter must accept every one of them.
var releaseTag = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

type releaseWorkflow struct {
	On struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Permissions any                    `yaml:"permissions"`
	Concurrency any                    `yaml:"concurrency"`
	Jobs        map[string]workflowJob `yaml:"jobs"`
}

// tagFilterMatches reports whether a GitHub Actions tag filter (the subset
// the workflow uses: literal characters, [0-9] classes, * and +) accepts tag.
func tagFilterMatches(filter, tag string) bool {
	var re strings.Builder
	re.WriteString("^")
	for i := 0; i < len(filter); i++ {
		switch c := filter[i]; c {
		case '*':
			re.WriteString("[^/]*")
		case '+':
			re.WriteString("+")
		case '[':
			j := strings.IndexByte(filter[i:], ']')
			if j < 0 {
				return false
			}
			re.WriteString(filter[i : i+j+1])
			i += j
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	ok, err := regexp.MatchString(re.String(), tag)
	return err == nil && ok
}

// checkReleaseWorkflow checks what the release workflow must do: run on a
// release tag only, with the least permissions per job, build the archives
// with scripts/release.sh (what TestReleaseBuild runs), and build the image
// from deploy/Dockerfile for both Linux architectures with the version
// stamped, under the name the manifests run.
func checkReleaseWorkflow(src []byte, manifestTag string) []string {
	var p problems
	var w releaseWorkflow
	if err := yaml.Unmarshal(src, &w); err != nil {
		return []string{err.Error()}
	}
	if len(w.On.Push.Tags) == 0 {
		p.addf("no on.push.tags: the workflow must run for a release tag")
	}
	for _, tag := range []string{"v0.1.0", "v1.12.3-rc.1", manifestTag} {
		if !slices.ContainsFunc(w.On.Push.Tags, func(f string) bool { return tagFilterMatches(f, tag) }) {
			p.addf("on.push.tags %q does not accept the release tag %s", w.On.Push.Tags, tag)
		}
	}
	if slices.ContainsFunc(w.On.Push.Tags, func(f string) bool { return tagFilterMatches(f, "main") }) {
		p.addf("on.push.tags %q accepts a tag that is no release (main)", w.On.Push.Tags)
	}
	if perms, ok := permissionMap(w.Permissions); !ok || len(perms) > 0 {
		p.addf("workflow-level permissions must be {} (each job asks for its own), got %v", w.Permissions)
	}
	if _, cancel, ok := concurrencyOf(w.Concurrency); !ok || cancel != false {
		p.addf("no concurrency group with cancel-in-progress: false: a half-published release could be cancelled")
	}
	built, imaged := false, false
	for name, j := range w.Jobs {
		perms, ok := permissionMap(j.Permissions)
		if !ok {
			p.addf("job %s: no permissions block", name)
		}
		for k, v := range perms {
			if v == "write-all" || v == "read-all" || (v == "write" && k != "contents" && k != "packages" && k != "id-token" && k != "attestations") {
				p.addf("job %s: permission %s: %s", name, k, v)
			}
		}
		for _, s := range j.Steps {
			if s.Uses != "" {
				at := strings.LastIndex(s.Uses, "@")
				if at < 0 || slices.Contains([]string{"main", "master", "latest", "HEAD"}, s.Uses[at+1:]) {
					p.addf("job %s step %q: action %s is not pinned to a version", name, s.Name, s.Uses)
				}
			}
			for _, ref := range exprRef.FindAllString(s.Run, -1) {
				if untrustedExpr.MatchString(ref) {
					p.addf("job %s step %q: %s is pasted into the script", name, s.Name, ref)
				}
			}
			if strings.Contains(s.Run, "scripts/release.sh") {
				built = true
				if perms["contents"] != "write" {
					p.addf("job %s builds the archives but cannot publish them (contents: write)", name)
				}
				if f := strings.Fields(s.Run[strings.Index(s.Run, "scripts/release.sh"):]); len(f) < 3 || f[1] != `"$GITHUB_REF_NAME"` {
					p.addf("job %s: scripts/release.sh is not given the tag (\"$GITHUB_REF_NAME\") as the version", name)
				} else if len(f) > 3 && !strings.HasPrefix(f[3], "#") && f[3] != "&&" && f[3] != "|" {
					p.addf("job %s: scripts/release.sh is given targets %q; the default list is the release", name, f[3:])
				}
			}
			if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
				imaged = true
				with := func(k string) string { return fmt.Sprint(s.With[k]) }
				if with("file") != "deploy/Dockerfile" {
					p.addf("job %s: the image is built from %q, want deploy/Dockerfile", name, with("file"))
				}
				for _, pl := range []string{"linux/amd64", "linux/arm64"} {
					if !strings.Contains(with("platforms"), pl) {
						p.addf("job %s: the image is not built for %s", name, pl)
					}
				}
				if !strings.Contains(with("build-args"), "VERSION=${{ github.ref_name }}") {
					p.addf("job %s: the image build does not stamp the version (build-args VERSION=${{ github.ref_name }})", name)
				}
				if !strings.Contains(with("tags"), ":${{ github.ref_name }}") {
					p.addf("job %s: the image is not tagged with the release tag", name)
				}
				if perms["packages"] != "write" {
					p.addf("job %s pushes the image without packages: write", name)
				}
			}
		}
	}
	if !built {
		p.addf("no step runs scripts/release.sh")
	}
	if !imaged {
		p.addf("no step builds the image with docker/build-push-action")
	}
	// The image name: ghcr.io/<owner, lower case>/rotor, which is rotorImage
	// for the rotor-dev organisation.
	if !strings.Contains(string(src), `ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/rotor`) {
		p.addf("the image is not named ghcr.io/${GITHUB_REPOSITORY_OWNER,,}/rotor (%s for rotor-dev)", rotorImage)
	}
	return p
}

// manifestRotorTags returns the tags of rotor's image in the Kubernetes
// manifests, and the problems with its references.
func manifestRotorTags(m *manifests) ([]string, []string) {
	var p problems
	var tags []string
	var specs []struct {
		where string
		c     []string
	}
	for _, d := range m.deployments {
		var imgs []string
		for _, c := range append(slices.Clone(d.Spec.Template.Spec.InitContainers), d.Spec.Template.Spec.Containers...) {
			imgs = append(imgs, c.Image)
		}
		specs = append(specs, struct {
			where string
			c     []string
		}{"Deployment " + d.Name, imgs})
	}
	for _, cj := range m.cronJobs {
		var imgs []string
		s := cj.Spec.JobTemplate.Spec.Template.Spec
		for _, c := range append(slices.Clone(s.InitContainers), s.Containers...) {
			imgs = append(imgs, c.Image)
		}
		specs = append(specs, struct {
			where string
			c     []string
		}{"CronJob " + cj.Name, imgs})
	}
	for _, s := range specs {
		for _, img := range s.c {
			repo, tag, _ := strings.Cut(img, ":")
			if !strings.HasSuffix(repo, "/rotor") {
				continue
			}
			if repo != rotorImage {
				p.addf("%s runs %s; the release workflow pushes %s", s.where, img, rotorImage)
				continue
			}
			if !releaseTag.MatchString(tag) {
				p.addf("%s runs %s: tag %q is not a release tag the workflow builds", s.where, img, tag)
				continue
			}
			tags = append(tags, tag)
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if len(tags) == 0 {
		p.addf("no manifest runs %s", rotorImage)
	}
	if len(tags) > 1 {
		p.addf("the manifests run different releases: %v", tags)
	}
	return tags, p
}

// checkReleaseRefs checks that the manifests and the example CI workflow
// name one release the release workflow builds.
func checkReleaseRefs(t *testing.T, k8s map[string][]byte, ciWorkflow, release []byte) []string {
	t.Helper()
	m, p := decodeManifests(k8s)
	tags, tp := manifestRotorTags(m)
	p = append(p, tp...)
	w, err := parseWorkflow(ciWorkflow)
	if err != nil {
		return append(p, err.Error())
	}
	if v := w.Env["ROTOR_VERSION"]; !releaseTag.MatchString(v) {
		p.addf("%s: ROTOR_VERSION %q is not a release tag", workflowFile, v)
	} else if len(tags) == 1 && tags[0] != v {
		p.addf("%s installs %s but the manifests run %s", workflowFile, v, tags[0])
	}
	tag := "v0.1.0"
	if len(tags) == 1 {
		tag = tags[0]
	}
	return append(p, checkReleaseWorkflow(release, tag)...)
}

func TestReleaseWorkflow(t *testing.T) {
	reportProblems(t, releaseWorkflowFile, checkReleaseRefs(t, readKubernetesFiles(t), readFile(t, workflowFile), readFile(t, releaseWorkflowFile)))
}

func TestReleaseWorkflowActionlint(t *testing.T) {
	reportProblems(t, releaseWorkflowFile, actionlintFindings(t, releaseWorkflowFile, readFile(t, releaseWorkflowFile)))
}

// TestReleaseChecksCatchBreakage breaks the release files in the ways the
// checks above promise to catch.
func TestReleaseChecksCatchBreakage(t *testing.T) {
	tests := []struct {
		name     string
		file     string // which file is broken
		old, new string
		want     string
	}{
		{"no tag trigger", releaseWorkflowFile, "  push:\n    tags:", "  pull_request:\n    branches:", "no on.push.tags"},
		{"tag filter too narrow", releaseWorkflowFile, `tags: ["v[0-9]+.[0-9]+.[0-9]+*"]`, `tags: ["v[0-9]+.[0-9]+.[0-9]+"]`, "does not accept the release tag v1.12.3-rc.1"},
		{"broad permissions", releaseWorkflowFile, "permissions: {}", "permissions: write-all", "workflow-level permissions"},
		{"no archives", releaseWorkflowFile, `run: scripts/release.sh "$GITHUB_REF_NAME" dist`, `run: make dist`, "no step runs scripts/release.sh"},
		{"fewer targets", releaseWorkflowFile, `run: scripts/release.sh "$GITHUB_REF_NAME" dist`, `run: scripts/release.sh "$GITHUB_REF_NAME" dist linux/amd64`, "the default list is the release"},
		{"image from elsewhere", releaseWorkflowFile, "file: deploy/Dockerfile", "file: Dockerfile", "want deploy/Dockerfile"},
		{"image for one platform", releaseWorkflowFile, "platforms: linux/amd64,linux/arm64", "platforms: linux/amd64", "not built for linux/arm64"},
		{"image without version", releaseWorkflowFile, "VERSION=${{ github.ref_name }}", "VERSION=dev", "does not stamp the version"},
		{"image cannot push", releaseWorkflowFile, "      packages: write\n", "", "without packages: write"},
		{"action on a branch", releaseWorkflowFile, "docker/build-push-action@v6", "docker/build-push-action@master", "not pinned"},
		{"actionlint: bad input", releaseWorkflowFile, "go-version-file: go.mod", "go-version-fil: go.mod", "go-version-fil"},
		{"manifest image elsewhere", "kubernetes/daemon.yaml", "image: ghcr.io/rotor-dev/rotor:", "image: docker.io/rotor/rotor:", "the release workflow pushes"},
		{"manifest image latest", "kubernetes/daemon.yaml", "image: ghcr.io/rotor-dev/rotor:v0.1.0", "image: ghcr.io/rotor-dev/rotor:latest", "not a release tag"},
		{"manifests disagree", "kubernetes/cronjob.yaml", "image: ghcr.io/rotor-dev/rotor:v0.1.0", "image: ghcr.io/rotor-dev/rotor:v0.2.0", "different releases"},
		{"workflow installs another release", workflowFile, "ROTOR_VERSION: v0.1.0", "ROTOR_VERSION: v0.2.0", "but the manifests run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k8s := readKubernetesFiles(t)
			ci, rel := readFile(t, workflowFile), readFile(t, releaseWorkflowFile)
			var orig string
			switch {
			case tt.file == releaseWorkflowFile:
				orig = string(rel)
			case tt.file == workflowFile:
				orig = string(ci)
			default:
				orig = string(k8s[filepath.Base(tt.file)])
			}
			broken := strings.Replace(orig, tt.old, tt.new, 1)
			if broken == orig {
				t.Fatalf("%q not found in %s: update this case", tt.old, tt.file)
			}
			var found []string
			switch {
			case tt.file == releaseWorkflowFile:
				found = append(checkReleaseRefs(t, k8s, ci, []byte(broken)), actionlintFindings(t, releaseWorkflowFile, []byte(broken))...)
			case tt.file == workflowFile:
				found = checkReleaseRefs(t, k8s, []byte(broken), rel)
			default:
				k8s[filepath.Base(tt.file)] = []byte(broken)
				found = checkReleaseRefs(t, k8s, ci, rel)
			}
			if !slices.ContainsFunc(found, func(s string) bool { return strings.Contains(s, tt.want) }) {
				t.Errorf("no problem mentioning %q; found %q", tt.want, found)
			}
		})
	}
}

// scriptTargets returns the default targets of scripts/release.sh.
func scriptTargets(t *testing.T) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*targets=\(([a-z0-9/ ]+)\)`).FindSubmatch(readFile(t, releaseScript))
	if m == nil {
		t.Fatalf("%s: no default targets=(...) line", releaseScript)
	}
	return strings.Fields(string(m[1]))
}

// TestReleaseTargets: the script builds linux, darwin and windows on amd64
// and arm64 when the workflow runs it without targets.
func TestReleaseTargets(t *testing.T) {
	if got := scriptTargets(t); !slices.Equal(got, releaseTargets) {
		t.Errorf("%s builds %v by default, want %v", releaseScript, got, releaseTargets)
	}
}

// TestCrossCompile type-checks cmd/rotor and everything it imports for
// every release target, with the target's build constraints
// (GOOS/GOARCH, CGO_ENABLED=0), from source. That is what breaks a cross
// build in practice: a file for one system calling what another lacks
// (process groups, signals, file locks). Type-checking costs about a tenth
// of compiling six targets (see README "Releases" for the measurement);
// TestReleaseBuild compiles and links the host's target in full with the
// release script, and the release workflow builds all six.
func TestCrossCompile(t *testing.T) {
	for _, target := range releaseTargets {
		t.Run(strings.ReplaceAll(target, "/", "_"), func(t *testing.T) {
			goos, goarch, _ := strings.Cut(target, "/")
			cfg := &packages.Config{
				Mode: packages.NeedName | packages.NeedImports | packages.NeedDeps | packages.NeedTypes,
				Dir:  "..",
				Env:  append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-mod=readonly"),
			}
			pkgs, err := packages.Load(cfg, "./cmd/rotor")
			if err != nil {
				t.Fatalf("load ./cmd/rotor for %s: %v", target, err)
			}
			n := 0
			packages.Visit(pkgs, nil, func(p *packages.Package) {
				n++
				for _, e := range p.Errors {
					t.Errorf("%s: %s", target, e)
				}
			})
			if len(pkgs) != 1 || pkgs[0].Types == nil || pkgs[0].Name != "main" {
				t.Fatalf("%s: ./cmd/rotor did not load as package main", target)
			}
			t.Logf("%s: %d packages type-checked", target, n)
		})
	}
}

// TestReleaseBuild runs scripts/release.sh, as the release workflow does,
// for the platform the tests run on, and checks what it ships: the archive
// holds the binary and the README; checksums.txt lists the
// archive's SHA-256; and the binary reports the stamped version.
func TestReleaseBuild(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is needed to run the release script")
	}
	host := runtime.GOOS + "/" + runtime.GOARCH
	if !slices.Contains(releaseTargets, host) {
		t.Fatalf("the tests run on %s, which is no release target", host)
	}
	const version = "v9.8.7-test.1"
	out := t.TempDir()
	cmd := exec.Command("bash", releaseScript, version, out, host)
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", releaseScript, err, b)
	}
	name := fmt.Sprintf("rotor_%s_%s_%s", version, runtime.GOOS, runtime.GOARCH)
	archive := filepath.Join(out, name+".tar.gz")

	sums := string(readFile(t, filepath.Join(out, "checksums.txt")))
	b := readFile(t, archive)
	sum := sha256.Sum256(b)
	if want := hex.EncodeToString(sum[:]) + "  " + name + ".tar.gz\n"; sums != want {
		t.Errorf("checksums.txt is %q, want %q", sums, want)
	}

	dir := t.TempDir()
	files := untar(t, archive, dir)
	for _, want := range []string{name + "/rotor", name + "/README.md"} {
		if !slices.Contains(files, want) {
			t.Errorf("the archive holds %v, not %s", files, want)
		}
	}
	v, err := exec.Command(filepath.Join(dir, name, "rotor"), "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("rotor version -o json: %v", err)
	}
	var doc struct {
		Version  string `json:"version"`
		Module   string `json:"module"`
		Platform string `json:"platform"`
	}
	if err := json.Unmarshal(v, &doc); err != nil {
		t.Fatalf("rotor version -o json: %v\n%s", err, v)
	}
	if doc.Version != version || doc.Platform != host || doc.Module != "github.com/rotor-dev/rotor" {
		t.Errorf("rotor version -o json = %+v, want version %s, platform %s, module github.com/rotor-dev/rotor", doc, version, host)
	}
	line, err := exec.Command(filepath.Join(dir, name, "rotor"), "--version").Output()
	if err != nil || !strings.HasPrefix(string(line), "rotor "+version+" ") {
		t.Errorf("rotor --version = %q (%v), want it to start with rotor %s", line, err, version)
	}
}

// untar extracts a .tar.gz into dir and returns the names of its files.
func untar(t *testing.T, archive, dir string) []string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s is owned by %d:%d, want 0:0 (no trace of the build machine)", h.Name, h.Uid, h.Gid)
		}
		target := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(target, dir+string(filepath.Separator)) {
			t.Fatalf("%s escapes the archive", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			names = append(names, strings.TrimSuffix(h.Name, "/"))
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(w, tr); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}
