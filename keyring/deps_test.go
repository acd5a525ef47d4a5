package keyring

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// module is this module's path.
const module = "github.com/rotor-dev/rotor/keyring"

// goList runs `go list args...` on this module as an application that
// requires it sees it (in module mode, outside any workspace) and returns
// the lines it printed.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		msg := ""
		if ee, ok := err.(*exec.ExitError); ok {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, msg)
	}
	return strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' })
}

// TestDependencies: the SDK module depends on the standard library only.
// A package of rotor's main module, or any other module, would put its
// requirements (client-go, the AWS SDK, Prometheus, actionlint…) into the
// minimum version selection of every application that imports the SDK.
func TestDependencies(t *testing.T) {
	t.Run("packages", func(t *testing.T) {
		// Every package the module's packages and tests import, with the
		// module providing it; standard library packages are left out.
		deps := goList(t, "-deps", "-test", "-f", "{{if not .Standard}}{{.ImportPath}}|{{with .Module}}{{.Path}}{{end}}{{end}}", "./...")
		if len(deps) == 0 {
			t.Fatal("go list -deps listed nothing: not this module's dependency list")
		}
		forbidden := []struct{ prefix, what string }{
			{"k8s.io/", "Kubernetes"},
			{"sigs.k8s.io/", "Kubernetes"},
			{"github.com/aws/", "the AWS SDK"},
			{"github.com/prometheus/", "Prometheus"},
			{"github.com/rhysd/actionlint", "actionlint"},
			{"github.com/hashicorp/", "Vault's client"},
		}
		sawSelf := false
		for _, d := range deps {
			pkg, mod, _ := strings.Cut(d, "|")
			sawSelf = sawSelf || pkg == module
			for _, f := range forbidden {
				if strings.HasPrefix(pkg, f.prefix) {
					t.Errorf("the SDK depends on %s: %s", f.what, pkg)
				}
			}
			if mod != module {
				what := "module " + mod
				if mod == "github.com/rotor-dev/rotor" {
					what = "rotor's main module"
				}
				t.Errorf("the SDK imports %s from %s; it may use the standard library only", pkg, what)
			}
		}
		if !sawSelf {
			t.Fatalf("go list -deps did not list %s itself: %q", module, deps)
		}
	})
	t.Run("modules", func(t *testing.T) {
		// The module graph an application inherits: this module alone.
		if mods := goList(t, "-m", "all"); len(mods) != 1 || mods[0] != module {
			t.Errorf("go list -m all = %q, want only %s: the SDK's go.mod must require nothing", mods, module)
		}
	})
}
