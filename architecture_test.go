package rotor_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// root is the import path of rotor's main module; the README names
// packages relative to it.
const root = "github.com/rotor-dev/rotor"

// diagramPackage is one package line of the README's architecture diagram.
type diagramPackage struct {
	module string   // the module header it is listed under
	line   int      // its position in the diagram, from the top
	deps   []string // the packages its arrow points to
}

// readDiagram parses the text block of the README's Architecture section:
// module header lines (a module path at the start of the line), package
// lines ("  pkg → dep, dep" or "  pkg"), and continuation lines of a
// package's arrow (indented further). Other lines are decoration.
func readDiagram(t *testing.T) map[string]*diagramPackage {
	t.Helper()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Architecture\n")
	if !ok {
		t.Fatal("README.md has no Architecture section")
	}
	_, block, ok := strings.Cut(section, "\n```text\n")
	if !ok {
		t.Fatal("the Architecture section has no text block")
	}
	block, _, _ = strings.Cut(block, "\n```")
	pkgs := map[string]*diagramPackage{}
	var module string
	var last *diagramPackage
	for i, line := range strings.Split(block, "\n") {
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case strings.HasPrefix(line, root):
			module, last = strings.Fields(line)[0], nil
		case indent == 2:
			name, deps, _ := strings.Cut(line, "→")
			name = strings.TrimSpace(name)
			if pkgs[name] != nil {
				t.Errorf("README: %s is listed twice", name)
			}
			last = &diagramPackage{module: module, line: i}
			pkgs[name] = last
			last.deps = appendDeps(last.deps, deps)
		case indent > 2 && last != nil:
			last.deps = appendDeps(last.deps, line)
		}
	}
	return pkgs
}

func appendDeps(deps []string, list string) []string {
	for _, d := range strings.Split(list, ",") {
		if d = strings.TrimSpace(d); d != "" {
			deps = append(deps, d)
		}
	}
	return deps
}

// codePackage is a package as the go command sees it.
type codePackage struct {
	module string
	deps   []string // the rotor packages it imports, tests left out
}

// listPackages returns the packages of the module in dir, without
// test-only packages, keyed by their path relative to root.
func listPackages(t *testing.T, dir string) map[string]codePackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{if .GoFiles}}{{.ImportPath}}|{{.Module.Path}}|{{join .Imports \" \"}}{{end}}", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v", dir, err)
	}
	pkgs := map[string]codePackage{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		p := codePackage{module: f[1]}
		for _, imp := range strings.Fields(f[2]) {
			if rel, ok := strings.CutPrefix(imp, root+"/"); ok {
				p.deps = append(p.deps, rel)
			}
		}
		pkgs[strings.TrimPrefix(f[0], root+"/")] = p
	}
	return pkgs
}

// TestArchitecture: the README's architecture diagram lists every package
// of rotor and of the SDK module under its module, with exactly the
// arrows the code has, every arrow pointing down the page; the SDK module
// is at the bottom, so nothing of rotor's is imported by it.
func TestArchitecture(t *testing.T) {
	diagram := readDiagram(t)
	code := listPackages(t, ".")
	for _, mod := range []string{"keyring", "keyring/pgxkeyring"} {
		for name, p := range listPackages(t, mod) {
			code[name] = p
		}
	}
	if len(code) < 10 || code["keyring"].module != root+"/keyring" {
		t.Fatalf("go list found %d packages, keyring in module %q: not rotor's packages", len(code), code["keyring"].module)
	}
	for name, c := range code {
		d := diagram[name]
		if d == nil {
			t.Errorf("README: %s (imports %s) is missing from the diagram", name, strings.Join(c.deps, ", "))
			continue
		}
		if d.module != c.module {
			t.Errorf("README: %s is listed under module %s; it is in %s", name, d.module, c.module)
		}
		got, want := slices.Sorted(slices.Values(d.deps)), slices.Sorted(slices.Values(c.deps))
		if !slices.Equal(got, want) {
			t.Errorf("README: %s → %s; the code imports %s", name, strings.Join(got, ", "), strings.Join(want, ", "))
		}
		for _, dep := range d.deps {
			if target := diagram[dep]; target != nil && target.line < d.line {
				t.Errorf("README: the arrow %s → %s points up the page", name, dep)
			}
		}
	}
	for name := range diagram {
		if _, ok := code[name]; !ok {
			t.Errorf("README: the diagram lists %s, which is no package", name)
		}
	}
}
