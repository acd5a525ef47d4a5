package supervisor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

func TestMergeEnvReplacesInheritedValues(t *testing.T) {
	base := []string{"PATH=/bin", "APP_KEY_SECONDARY=stale-from-parent", "HOME=/root"}
	got := mergeEnv(base, []string{"APP_KEY=new", "APP_KEY_SECONDARY="})
	want := []string{"PATH=/bin", "HOME=/root", "APP_KEY=new", "APP_KEY_SECONDARY="}
	if !slices.Equal(got, want) {
		t.Fatalf("mergeEnv = %v, want %v", got, want)
	}
}

func TestEnvFileIsPrivateAndQuoted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.env")
	s, err := New(Config{Argv: []string{"true"}, Mode: Signal, EnvFile: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.writeEnvFile([]string{`K=va"l ue`, "K_SECONDARY="}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file mode %v, %v; want 0600", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), `K="va\"l ue"`) || !strings.Contains(string(b), `K_SECONDARY=""`) {
		t.Fatalf("env file:\n%s", b)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".rotor-env-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestConfigErrors(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("no command accepted")
	}
	if _, err := New(Config{Argv: []string{"x"}, Mode: Signal}); err == nil {
		t.Error("signal mode without env file accepted")
	}
	for in, want := range map[string]syscall.Signal{"HUP": syscall.SIGHUP, "sigusr1": syscall.SIGUSR1, "USR2": syscall.SIGUSR2} {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseSignal("KILL"); err == nil {
		t.Error("SIGKILL accepted as a reload signal")
	}
}
