package keyring

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEnvFileFormat pins the bytes of an env file: other implementations
// (the Node package) read exactly this.
func TestEnvFileFormat(t *testing.T) {
	got := string(EnvFile("written by rotor run; re-read on SIGHUP", []string{
		"APP_KEY=sk_test_abc", "APP_KEY_SECONDARY=", `ODD=a "quoted" \ value`,
	}))
	want := "# written by rotor run; re-read on SIGHUP\n" +
		"APP_KEY=\"sk_test_abc\"\n" +
		"APP_KEY_SECONDARY=\"\"\n" +
		`ODD="a \"quoted\" \\ value"` + "\n"
	if got != want {
		t.Errorf("EnvFile() =\n%s\nwant\n%s", got, want)
	}
	if strings.Count(string(EnvFile("two\nlines", nil)), "\n") != 1 {
		t.Error("a comment with a newline spills onto a second line")
	}
}

func TestParseEnvFile(t *testing.T) {
	tests := []struct {
		name    string
		reason  string
		data    string
		want    map[string]string
		wantErr string
	}{
		{name: "as written", reason: "EnvFile's own output",
			data: "# comment\nA=\"x\"\nB=\"\"\n", want: map[string]string{"A": "x", "B": ""}},
		{name: "blank lines and indentation", reason: "editors and humans",
			data: "\n  A=\"x\"  \r\n\n# B=\"y\"\n", want: map[string]string{"A": "x"}},
		{name: "escapes", reason: "strconv.Quote's escapes come back",
			data: `A="a\"b\\c\n\x00"`, want: map[string]string{"A": "a\"b\\c\n\x00"}},
		{name: "last wins", reason: "like a shell",
			data: "A=\"1\"\nA=\"2\"\n", want: map[string]string{"A": "2"}},
		{name: "unquoted", reason: "values are always quoted", data: "A=\"x\"\nB=secret-value\n", wantErr: "line 2"},
		{name: "single quotes", reason: "only Go double quotes", data: "A='secret-value'", wantErr: "line 1"},
		{name: "backquotes", reason: "only Go double quotes", data: "A=`secret-value`", wantErr: "line 1"},
		{name: "no name", reason: "a variable needs a name", data: `="secret-value"`, wantErr: "line 1"},
		{name: "no equals", reason: "not a variable", data: `secret-value`, wantErr: "line 1"},
		{name: "space in the name", reason: "not a variable name", data: `A B="secret-value"`, wantErr: "line 1"},
		{name: "open quote", reason: "a truncated file", data: `A="secret-value`, wantErr: "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseEnvFile([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEnvFile() error = %v, want one naming %s (%s)", err, tt.wantErr, tt.reason)
				}
				if strings.Contains(err.Error(), "secret-value") {
					t.Errorf("the error shows the line's content: %v", err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("ParseEnvFile() = %v, %v; want %v (%s)", got, err, tt.want, tt.reason)
			}
		})
	}
}

func FuzzParseEnvFile(f *testing.F) {
	f.Add([]byte("# c\nA=\"x\"\n"))
	f.Add([]byte(`A="a\"b\\c\n\x00"`))
	f.Add([]byte("A=x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		vars, err := ParseEnvFile(data)
		if err != nil {
			return
		}
		// What parses, written again, parses to the same variables.
		var list []string
		for k, v := range vars {
			list = append(list, k+"="+v)
		}
		again, err := ParseEnvFile(EnvFile("fuzz", list))
		if err != nil || !maps.Equal(again, vars) {
			t.Fatalf("round trip of %q: %v, %v", vars, again, err)
		}
	})
}

// TestEnvFileSource: an application under `rotor run --mode signal` reads
// the file rotor run wrote and, after a rewrite, the new set.
func TestEnvFileSource(t *testing.T) {
	sec := newSecrets(t)
	a, b := sec.key(), sec.key()
	path := filepath.Join(t.TempDir(), ".env.rotor")
	write := func(set Set) {
		t.Helper()
		if err := os.WriteFile(path, EnvFile("test", EnvVars("APP_KEY", set)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(Set{Current: a})
	k := mustNew(t, EnvFileSource(path, "APP_KEY"), newClock())
	if k.Current().Value != a.Value || k.Current().ID != a.ID || k.Set().Previous != nil {
		t.Fatalf("first set: %v", k.Set().LogValue())
	}
	write(Set{Current: b, Previous: ptr(a)})
	if err := k.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if set := k.Set(); set.Current.Value != b.Value || set.Previous == nil || set.Previous.Value != a.Value || set.Previous.ID != a.ID {
		t.Fatalf("after the rewrite: %v", set.LogValue())
	}

	if err := os.WriteFile(path, []byte("APP_KEY="+a.Value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := k.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), "line 1") || k.Current().Value != b.Value {
		t.Errorf("a malformed file: Refresh = %v, current %v; want an error naming the line and the keys kept", err, k.Current())
	}
	sec.checkErr(err)

	_, err = EnvFileSource(filepath.Join(t.TempDir(), "missing"), "APP_KEY").Load(t.Context())
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing file: %v, want os.ErrNotExist", err)
	}
}
