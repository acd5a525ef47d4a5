package file

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/rotor-dev/rotor/store"
)

// Hostile input to the file store: what somebody who can write the store
// directory (or trick rotor into a bad one) can put there, and what the
// store must do about it. Putting back an old version of a valid file is
// the audit chain's to detect; see package audit and cmd/rotor.

// TestHostileStoreDirectory: a store directory that group or others may
// write is refused when the store is opened.
func TestHostileStoreDirectory(t *testing.T) {
	for _, mode := range []os.FileMode{0o770, 0o702, 0o777, 0o1777} {
		_, dir, identity := newTestStore(t)
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, err := New(dir, identity)
		if err == nil || !strings.Contains(err.Error(), "may write") {
			t.Errorf("mode %04o: New = %v, want a refusal naming who may write", mode, err)
		}
	}
	// Readable by group is not writable: allowed (the files are 0600 and
	// encrypted).
	_, dir, identity := newTestStore(t)
	if err := os.Chmod(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := New(dir, identity); err != nil {
		t.Fatalf("mode 0750: %v", err)
	}
}

// TestHostileSecretFiles: files planted under a secret's name are refused
// on load, promptly: a FIFO (which made every read block, and rotor status
// ignore SIGTERM), a symbolic link, a device, a file too large to be one of
// rotor's.
func TestHostileSecretFiles(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, path string)
		want  string
	}{
		{"fifo", func(t *testing.T, path string) {
			if err := syscall.Mkfifo(path, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
		{"symlink to another secret", func(t *testing.T, path string) {
			other := filepath.Join(filepath.Dir(path), secretFile("other"))
			if err := os.Symlink(other, path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"symlink to a device", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/zero", path); err != nil {
				t.Fatal(err)
			}
		}, "symbolic link"},
		{"huge file", func(t *testing.T, path string) {
			f, err := os.Create(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := f.Truncate(maxFileSize + 1); err != nil {
				t.Fatal(err)
			}
		}, "more than any secret file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, dir, _ := newTestStore(t)
			create(t, st, "other")
			tt.plant(t, filepath.Join(dir, secretFile("demo")))
			_, _, err := st.Load(t.Context(), "demo")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want an error saying %q", err, tt.want)
			}
			// A save refuses to replace what it cannot read.
			if _, err := st.Save(t.Context(), testSecret("demo"), store.NoVersion); err == nil {
				t.Fatal("Save over a planted file succeeded")
			}
			// Listing ignores what is not a regular file, and the rest of
			// the store still works.
			if names, err := st.List(t.Context()); err != nil || !slices.Contains(names, "other") {
				t.Fatalf("List = %q, %v; want the other secret listed", names, err)
			}
			if _, _, err := st.Load(t.Context(), "other"); err != nil {
				t.Fatalf("the other secret: %v", err)
			}
		})
	}
}

// TestHostileFileNames: every file name the store writes fits in 255
// bytes, whatever the valid name; and file names escapeName cannot have
// produced (a second spelling of a name) are not secrets, so one secret
// never has two files.
func TestHostileFileNames(t *testing.T) {
	for _, name := range []string{strings.Repeat("K", store.MaxNameLen), strings.Repeat("Ab", store.MaxNameLen/2), strings.Repeat("k", store.MaxNameLen)} {
		for _, f := range []string{secretFile(name), lockFile(name), tempFile(name)} {
			if len(f) > 255 {
				t.Errorf("%d-byte file name for a %d-character name", len(f), len(name))
			}
		}
		if got, ok := nameOfSecretFile(secretFile(name)); !ok || got != name {
			t.Errorf("round trip of a %d-character name failed", len(name))
		}
	}
	long := strings.Repeat("K", store.MaxNameLen)
	for _, file := range []string{
		"!a!p!i.age~", // not a suffix
		"api~80.age",  // short names use the ! form
		strings.ToLower(long) + "~" + strings.Repeat("f", 32) + "ff.age",               // mask too long
		strings.ToLower(long) + "~" + strings.Repeat("F", 32) + ".age",                 // upper-case hex
		strings.Repeat("9", store.MaxNameLen) + "~" + strings.Repeat("f", 32) + ".age", // upper-case digits
		"!A.age",    // escaped upper case
		"a!.age",    // dangling escape
		".demo.age", // hidden
	} {
		if name, ok := nameOfSecretFile(file); ok {
			t.Errorf("%.40s… read as secret %.20s…", file, name)
		}
	}
}
