package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "anchor")
	write := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	if err := WriteFile(path, "", 0o640, write("one")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, "", 0o600, write("two")); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != "two" {
		t.Fatalf("content = %q, %v; want the second write", b, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600 as asked", fi.Mode().Perm())
	}

	boom := errors.New("boom")
	err = WriteFile(path, ".custom-*", 0o600, func(w io.Writer) error {
		_, _ = io.WriteString(w, "torn")
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("WriteFile = %v, want the writer's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Errorf("after a failed write the content is %q, want the old one", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after a failed write, want only the file (temporary file removed)", len(entries))
	}
}

func TestWriteFileMissingDir(t *testing.T) {
	err := WriteFile(filepath.Join(t.TempDir(), "no", "such"), "", 0o600, func(io.Writer) error { return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("WriteFile into a missing directory = %v, want ErrNotExist", err)
	}
}

func TestSyncDir(t *testing.T) {
	if err := SyncDir(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	if err := SyncDir(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("SyncDir of a missing directory succeeded")
	}
}

func TestWriteFileVia(t *testing.T) {
	dir := t.TempDir()
	path, tmp := filepath.Join(dir, "secret"), filepath.Join(dir, ".secret+tmp")
	// A crash left a longer temporary file behind: it is truncated, not
	// appended to or left in place.
	if err := os.WriteFile(tmp, []byte("a torn and much longer leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFileVia(path, tmp, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "new" {
		t.Fatalf("content = %q, %v; want %q", b, err, "new")
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file still there after the rename: %v", err)
	}

	boom := errors.New("boom")
	if err := WriteFileVia(path, tmp, 0o600, func(io.Writer) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("WriteFileVia = %v, want the writer's error", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Errorf("after a failed write the content is %q, want the old one", b)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left after a failed write: %v", err)
	}
	if err := WriteFileVia(path, filepath.Join(t.TempDir(), "elsewhere"), 0o600, func(io.Writer) error { return nil }); err == nil {
		t.Error("WriteFileVia accepted a temporary file in another directory (the rename would not be atomic)")
	}
}

// TestReaderKeepsTheFileItOpened checks the promise readers rely on to
// read without a lock (the file store's loads, a backup copying the
// directory): a file opened before any number of writes keeps the
// content it had. A write must never reuse a file that was once at path,
// for example by swapping the temporary file with path and refilling it
// next time: a reader still holding it would see it truncated.
func TestReaderKeepsTheFileItOpened(t *testing.T) {
	dir := t.TempDir()
	path, tmp := filepath.Join(dir, "secret"), filepath.Join(dir, ".secret+tmp")
	writeString := func(content string) {
		t.Helper()
		if err := WriteFileVia(path, tmp, 0o600, func(w io.Writer) error { _, err := io.WriteString(w, content); return err }); err != nil {
			t.Fatal(err)
		}
	}
	writeString("first")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, c := range []string{"second", "third", "fourth"} {
		writeString(c)
	}
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "first" {
		t.Fatalf("a reader that opened the file before three writes read %q, %v; want %q", b, err, "first")
	}
}
