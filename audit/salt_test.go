package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadOrCreateSalt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rotor")
	path := filepath.Join(dir, "audit.salt")
	salt, err := LoadOrCreateSalt(path)
	if err != nil {
		t.Fatalf("LoadOrCreateSalt: %v", err)
	}
	if len(salt) != SaltSize || bytes.Equal(salt, make([]byte, SaltSize)) {
		t.Fatalf("salt = %x, want %d random bytes", salt, SaltSize)
	}
	for p, want := range map[string]os.FileMode{path: 0o600, dir: 0o700 | os.ModeDir} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s has mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if got, want := string(readFile(t, path)), hex.EncodeToString(salt)+"\n"; got != want {
		t.Errorf("salt file holds %q, want %q", got, want)
	}
	again, err := LoadOrCreateSalt(path)
	if err != nil || !bytes.Equal(again, salt) {
		t.Errorf("second LoadOrCreateSalt = %x, %v; want the same salt %x", again, err, salt)
	}
	loaded, err := LoadSalt(path)
	if err != nil || !bytes.Equal(loaded, salt) {
		t.Errorf("LoadSalt = %x, %v; want %x", loaded, err, salt)
	}
	other, err := LoadOrCreateSalt(filepath.Join(dir, "other.salt"))
	if err != nil || bytes.Equal(other, salt) {
		t.Errorf("another deployment's salt = %x, %v; want a different salt", other, err)
	}
}

func TestLoadSaltMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.salt")
	_, err := LoadSalt(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadSalt = %v, want fs.ErrNotExist", err)
	}
	if msg := err.Error(); !strings.Contains(msg, path) || !strings.Contains(msg, "rotor init") {
		t.Errorf("LoadSalt = %q, want it to name %s and suggest rotor init", msg, path)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadSalt created %s", path)
	}
}

func TestLoadSalt(t *testing.T) {
	salt := bytes.Repeat([]byte{0xab, 0x0a, 0x00, 0x7f}, SaltSize/4) // raw, with a newline byte inside
	secretHex := hex.EncodeToString(salt)
	tests := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    []byte
		wantErr string
	}{
		{"hex with newline", []byte(secretHex + "\n"), 0o600, salt, ""},
		{"hex without newline", []byte(secretHex), 0o600, salt, ""},
		{"hex with CRLF", []byte(secretHex + "\r\n"), 0o600, salt, ""},
		{"uppercase hex", []byte(strings.ToUpper(secretHex)), 0o600, salt, ""},
		{"raw bytes", salt, 0o600, salt, ""},
		{"read-only for the owner", []byte(secretHex), 0o400, salt, ""},
		{"group readable", []byte(secretHex), 0o640, nil, "want 0600 or stricter"},
		{"world readable", []byte(secretHex), 0o604, nil, "want 0600 or stricter"},
		{"group writable", []byte(secretHex), 0o620, nil, "want 0600 or stricter"},
		{"short raw", salt[:SaltSize-1], 0o600, nil, "does not hold 32 bytes"},
		{"long raw", append(bytes.Clone(salt), 1, 2), 0o600, nil, "does not hold 32 bytes"},
		{"short hex", []byte(secretHex[:62]), 0o600, nil, "does not hold 32 bytes"},
		{"not hex", []byte(strings.Repeat("zz", SaltSize)), 0o600, nil, "does not hold 32 bytes"},
		{"empty", nil, 0o600, nil, "does not hold 32 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.salt")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil {
				t.Fatal(err)
			}
			got, err := LoadSalt(path)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(got, tt.want) {
					t.Fatalf("LoadSalt = %x, %v; want %x", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadSalt = %x, %v; want an error containing %q", got, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), secretHex[:16]) {
				t.Errorf("error %q quotes the salt", err)
			}
			// LoadOrCreateSalt must refuse it too, not replace it.
			if _, err := LoadOrCreateSalt(path); err == nil {
				t.Error("LoadOrCreateSalt accepted a salt file LoadSalt refuses")
			}
			if !bytes.Equal(readFile(t, path), tt.content) {
				t.Error("LoadOrCreateSalt overwrote an existing salt file")
			}
		})
	}
	t.Run("directory", func(t *testing.T) {
		if _, err := LoadSalt(t.TempDir()); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("LoadSalt(dir) = %v, want a not-a-regular-file error", err)
		}
	})
}
