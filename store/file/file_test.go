package file

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		st, _, _ := newTestStore(t)
		return st
	})
}

// newTestStore opens a store in a new directory with a new identity and
// returns it with the store directory and the identity path.
func newTestStore(t *testing.T) (st *Store, dir, identity string) {
	t.Helper()
	root := t.TempDir()
	identity = filepath.Join(root, "identity.txt")
	if err := GenerateIdentity(identity); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(root, "store")
	st, err := New(dir, identity)
	if err != nil {
		t.Fatal(err)
	}
	return st, dir, identity
}

const testValue = "sk_live_file_store_test_value_7Yq2"

func testSecret(name string) *store.Secret {
	return &store.Secret{
		Name: name,
		Current: &store.Key{
			Value:     testValue,
			ID:        "89abcdef01234567",
			CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC),
		},
	}
}

func create(t *testing.T, st *Store, name string) store.Version {
	t.Helper()
	v, err := st.Save(t.Context(), testSecret(name), store.NoVersion)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewMissingIdentity(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope", "identity.txt")
	_, err := New(filepath.Join(t.TempDir(), "store"), missing)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want an error wrapping fs.ErrNotExist", err)
	}
	for _, want := range []string{missing, "rotor init"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewInvalidIdentity(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{"empty", ""},
		{"comments only", "# public key: age1xyz\n"},
		{"recipient instead of identity", "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n"},
		{"bad checksum", "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n"},
		{"garbage", "not-a-key-Zx9vB7\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "identity.txt")
			if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := New(filepath.Join(t.TempDir(), "store"), path)
			if err == nil {
				t.Fatal("New succeeded with an invalid identity")
			}
			if !strings.Contains(err.Error(), "not a valid age identity") || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not say that %s is not a valid age identity", err, path)
			}
			if line := strings.TrimSpace(tc.content); line != "" && strings.Contains(err.Error(), line) {
				t.Errorf("error %q quotes the identity file", err)
			}
		})
	}
}

func TestNewIdentityPermissions(t *testing.T) {
	tests := []struct {
		perm   fs.FileMode
		wantOK bool
	}{
		{0o600, true},
		{0o400, true},
		{0o640, false},
		{0o604, false},
		{0o644, false},
		{0o700, false},
	}
	for _, tc := range tests {
		t.Run(tc.perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "identity.txt")
			if err := GenerateIdentity(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.perm); err != nil {
				t.Fatal(err)
			}
			_, err := New(filepath.Join(dir, "store"), path)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("New with identity mode %v: %v", tc.perm, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted identity mode %v", tc.perm)
			}
			if !strings.Contains(err.Error(), "chmod 600 "+path) {
				t.Errorf("error %q lacks the hint to chmod 600 %s", err, path)
			}
		})
	}
}

func TestGenerateIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "identity.txt")
	if err := GenerateIdentity(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("identity mode = %v, want 0600", perm)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		t.Fatalf("generated identity does not parse: %v", err)
	}
	if _, ok := ids[0].(*age.X25519Identity); len(ids) != 1 || !ok {
		t.Errorf("identity file holds %d identities of type %T, want one X25519 identity", len(ids), ids[0])
	}
}

func TestGenerateIdentityNeverOverwrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity.txt")
	if err := GenerateIdentity(path); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	err = GenerateIdentity(path)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second GenerateIdentity: err = %v, want an error wrapping fs.ErrExist", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("second GenerateIdentity changed the identity file")
	}
}

func TestWrongIdentity(t *testing.T) {
	st, dir, identity := newTestStore(t)
	create(t, st, "app-key")

	other := filepath.Join(t.TempDir(), "other.txt")
	if err := GenerateIdentity(other); err != nil {
		t.Fatal(err)
	}
	t.Run("New", func(t *testing.T) {
		_, err := New(dir, other)
		assertWrongIdentity(t, err, filepath.Join(dir, "app-key.age"), identity, other)
	})
	t.Run("Load", func(t *testing.T) {
		// Opened on an empty directory, then handed a foreign file.
		dir2 := filepath.Join(t.TempDir(), "store")
		st2, err := New(dir2, other)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir2, "app-key.age")
		copyFile(t, filepath.Join(dir, "app-key.age"), file)
		_, _, err = st2.Load(t.Context(), "app-key")
		assertWrongIdentity(t, err, file, identity, other)
		_, err = st2.Save(t.Context(), testSecret("app-key"), "1")
		assertWrongIdentity(t, err, file, identity, other)
	})
}

// assertWrongIdentity checks that err reports an identity mismatch on file
// without quoting the keys in the identity files.
func assertWrongIdentity(t *testing.T, err error, file string, identities ...string) {
	t.Helper()
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("err = %v, want an error wrapping ErrWrongIdentity", err)
	}
	if !strings.Contains(err.Error(), file) {
		t.Errorf("error %q does not name %s", err, file)
	}
	for _, path := range identities {
		content, err2 := os.ReadFile(path)
		if err2 != nil {
			t.Fatal(err2)
		}
		if key := lastLine(string(content)); strings.Contains(err.Error(), key) {
			t.Errorf("error %q contains key material", err)
		}
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFileModes(t *testing.T) {
	st, dir, _ := newTestStore(t)
	v := create(t, st, "app-key")
	if _, err := st.Save(t.Context(), testSecret("app-key"), v); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want fs.FileMode
	}{
		{dir, 0o700 | fs.ModeDir},
		{filepath.Join(dir, "app-key.age"), 0o600},
		{filepath.Join(dir, ".app-key.lock"), 0o600},
	}
	for _, tc := range tests {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != tc.want {
			t.Errorf("%s: mode %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestCiphertextHidesSecret(t *testing.T) {
	st, dir, _ := newTestStore(t)
	s := testSecret("app-key")
	s.Current.Meta = map[string]string{"note": "meta-marker-Qw3"}
	if _, err := st.Save(t.Context(), s, store.NoVersion); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "app-key.age"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(raw, []byte("age-encryption.org/v1\n")) {
		t.Error("secret file is not an age file")
	}
	for _, plain := range []string{testValue, s.Current.ID, "meta-marker-Qw3", `"current"`} {
		if bytes.Contains(raw, []byte(plain)) {
			t.Errorf("secret file contains the plaintext %q", plain)
		}
	}
}

func TestLeftoverTempFilesIgnored(t *testing.T) {
	st, dir, _ := newTestStore(t)
	v := create(t, st, "app-key")
	leftovers := []string{
		filepath.Join(dir, tempFile("app-key")),     // a crashed save of app-key
		filepath.Join(dir, tempFile("never-saved")), // a crashed create
		filepath.Join(dir, ".app-key+123456"),       // older rotors' random temp names
	}
	for _, p := range leftovers {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	names, err := st.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"app-key"}) {
		t.Errorf("List = %q, want only app-key", names)
	}
	if _, _, err := st.Load(t.Context(), "app-key"); err != nil {
		t.Errorf("Load next to a leftover temp file: %v", err)
	}
	if _, _, err := st.Load(t.Context(), "never-saved"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a secret with only a temp file: err = %v, want store.ErrNotFound", err)
	}

	// A save overwrites its own secret's leftover (it has a fixed name)
	// and leaves the others to the next open.
	v, err = st.Save(t.Context(), testSecret("app-key"), v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftovers[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("save of app-key left its temp file behind: %v", err)
	}
	if _, _, err := st.Load(t.Context(), "app-key"); err != nil {
		t.Errorf("Load after a save over a leftover temp file: %v", err)
	}
	if _, err := os.Stat(leftovers[1]); err != nil {
		t.Errorf("save of app-key removed another secret's temp file: %v", err)
	}
}

func TestOpenRemovesLeftoverTempFiles(t *testing.T) {
	st, dir, identity := newTestStore(t)
	create(t, st, "app-key")
	crashed := []string{tempFile("app-key"), tempFile("never-saved"), ".app-key+123456"}
	inFlight := tempFile("busy")
	keep := []string{inFlight, "notes.txt", ".app-key.lock", "app-key.age"}
	for _, f := range append(slices.Clone(crashed), inFlight, "notes.txt") {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Another process saving "busy" holds its lock: its temp file is in use.
	unlock, err := st.lock(t.Context(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()

	if _, err := New(dir, identity); err != nil {
		t.Fatal(err)
	}
	for _, f := range crashed {
		if _, err := os.Stat(filepath.Join(dir, f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("New left the crashed save's temp file %s: %v", f, err)
		}
	}
	for _, f := range keep {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("New removed %s: %v", f, err)
		}
	}
}

func TestLoadRejectsMisplacedFile(t *testing.T) {
	st, dir, _ := newTestStore(t)
	create(t, st, "app-key")
	copyFile(t, filepath.Join(dir, "app-key.age"), filepath.Join(dir, "other.age"))
	_, _, err := st.Load(t.Context(), "other")
	if err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Load of a file holding another secret: err = %v, want an error", err)
	}
}

func TestLoadCorruptFile(t *testing.T) {
	st, dir, _ := newTestStore(t)
	v := create(t, st, "app-key")
	path := filepath.Join(dir, "app-key.age")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Load(t.Context(), "app-key"); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("Load of a truncated file: err = %v, want a decryption error", err)
	}
	if _, err := st.Save(t.Context(), testSecret("app-key"), v); err == nil {
		t.Error("Save over a file whose version cannot be read succeeded")
	}
}

func TestErrorsNeverContainValues(t *testing.T) {
	st, _, _ := newTestStore(t)
	ctx := t.Context()
	v := create(t, st, "app-key")

	invalid := testSecret("app-key")
	invalid.Pending = &store.Key{ID: "x"}
	_, errInvalid := st.Save(ctx, invalid, v)
	_, errExists := st.Save(ctx, testSecret("app-key"), store.NoVersion)
	_, errStale := st.Save(ctx, testSecret("app-key"), "41")
	_, errMissing := st.Save(ctx, testSecret("missing"), v)
	for _, err := range []error{errInvalid, errExists, errStale, errMissing} {
		if err == nil {
			t.Fatal("Save succeeded, want an error")
		}
		if strings.Contains(err.Error(), testValue) {
			t.Errorf("error %q contains the secret value", err)
		}
	}
}

func TestSaveNil(t *testing.T) {
	st, _, _ := newTestStore(t)
	if _, err := st.Save(t.Context(), nil, store.NoVersion); err == nil {
		t.Error("Save(nil) succeeded")
	}
}

func TestNamesDifferingInCaseUseDistinctFiles(t *testing.T) {
	st, dir, _ := newTestStore(t)
	create(t, st, "api-key")
	create(t, st, "API-KEY")
	for _, f := range []string{"api-key.age", "!a!p!i-!k!e!y.age"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing secret file: %v", err)
		}
	}
}

func TestNameEscaping(t *testing.T) {
	tests := []struct {
		name string
		file string
	}{
		{"app-key", "app-key.age"},
		{"CLERK_SECRET_KEY", "!c!l!e!r!k_!s!e!c!r!e!t_!k!e!y.age"},
		{"a.age", "a.age.age"},
		{"x1.Y2", "x1.!y2.age"},
	}
	for _, tc := range tests {
		if got := secretFile(tc.name); got != tc.file {
			t.Errorf("secretFile(%q) = %q, want %q", tc.name, got, tc.file)
		}
		if got, ok := nameOfSecretFile(tc.file); !ok || got != tc.name {
			t.Errorf("nameOfSecretFile(%q) = %q, %v, want %q", tc.file, got, ok, tc.name)
		}
	}
}

func TestNameOfSecretFileRejects(t *testing.T) {
	tests := []struct {
		file   string
		reason string
	}{
		{".app-key.lock", "lock file"},
		{".app-key+123", "temp file"},
		{".hidden.age", "dot file"},
		{"README", "no .age suffix"},
		{"App.age", "unescaped upper case"},
		{"a!.age", "dangling escape"},
		{"!1.age", "escape of a non-letter"},
		{"a b.age", "invalid name"},
		{".age", "empty name"},
	}
	for _, tc := range tests {
		if name, ok := nameOfSecretFile(tc.file); ok {
			t.Errorf("nameOfSecretFile(%q) = %q, want rejection (%s)", tc.file, name, tc.reason)
		}
	}
}

func TestTempAndLockNamesNeverCollide(t *testing.T) {
	// "a" and "a.tmp" share a prefix; their temp files must not be taken
	// for each other's, or cleaning one would delete the other's.
	for _, name := range []string{"a", "a.tmp", "API-Key"} {
		if got, ok := tempOwner(tempFile(name)); !ok || got != name {
			t.Errorf("tempOwner(%q) = %q, %v; want %q", tempFile(name), got, ok, name)
		}
		if _, ok := tempOwner(lockFile(name)); ok {
			t.Errorf("lock file %q taken for a temp file", lockFile(name))
		}
		if _, ok := tempOwner(secretFile(name)); ok {
			t.Errorf("secret file %q taken for a temp file", secretFile(name))
		}
	}
	if tempFile("a") == tempFile("a.tmp") {
		t.Error("temp files collide")
	}
	if lockFile("a.lock") == lockFile("a") {
		t.Error("lock files collide")
	}
}

// TestSaveRemembersItsOwnFile checks that a save does not decrypt a file
// this Store wrote or read itself (its digest and version are
// remembered), and does decrypt one that another Store wrote since.
func TestSaveRemembersItsOwnFile(t *testing.T) {
	st, dir, identity := newTestStore(t)
	v := create(t, st, "app-key")
	other, err := New(dir, identity)
	if err != nil {
		t.Fatal(err)
	}
	// From here on st cannot decrypt: a save that decrypts fails.
	wrong, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	st.identities = []age.Identity{wrong}

	if v, err = st.Save(t.Context(), testSecret("app-key"), v); err != nil {
		t.Fatalf("save over the file this Store wrote: %v (it decrypted the file)", err)
	}
	if _, err := other.Save(t.Context(), testSecret("app-key"), v); err != nil {
		t.Fatal(err)
	}
	_, err = st.Save(t.Context(), testSecret("app-key"), v)
	if !errors.Is(err, ErrWrongIdentity) {
		t.Fatalf("save over a file another Store wrote: err = %v, want ErrWrongIdentity (it must decrypt the file)", err)
	}
}
