package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// SaltSize is the size in bytes of the salts [LoadOrCreateSalt] makes.
const SaltSize = 32

// LoadOrCreateSalt returns the deployment's salt stored at path, first
// creating the file, with SaltSize random bytes written in hex, if it does
// not exist. The file is created with mode 0600 and O_EXCL, so two
// processes racing to create it never both succeed; its directory is
// created with mode 0700. `rotor init` calls it; other commands call
// [LoadSalt].
func LoadOrCreateSalt(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create audit salt: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return LoadSalt(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create audit salt: %w", err)
	}
	salt := make([]byte, SaltSize)
	_, _ = rand.Read(salt) // crypto/rand.Read never fails; it crashes the program instead
	_, err = f.Write([]byte(hex.EncodeToString(salt) + "\n"))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(path))
	}
	if err != nil {
		// Leave no half-written salt behind for LoadSalt to reject.
		_ = os.Remove(path)
		return nil, fmt.Errorf("create audit salt %s: %w", path, err)
	}
	return salt, nil
}

// LoadSalt returns the deployment's salt stored at path: SaltSize bytes,
// either raw or hex encoded (with an optional final newline). It refuses a
// file that anyone but its owner may read or write, since whoever reads
// the salt can rewrite the audit log undetected. A missing file is an
// error wrapping fs.ErrNotExist that says to run `rotor init`.
func LoadSalt(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load audit salt: %s does not exist; run \"rotor init\" to create it: %w", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("load audit salt: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load audit salt: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load audit salt: %s is not a regular file", path)
	}
	// Windows has no Unix permission bits; its ACLs are the operator's job.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return nil, fmt.Errorf("load audit salt: %s has mode %04o, want 0600 or stricter (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4*SaltSize))
	if err != nil {
		return nil, fmt.Errorf("load audit salt: %w", err)
	}
	if len(data) == SaltSize {
		return data, nil
	}
	text := bytes.TrimSuffix(bytes.TrimSuffix(data, []byte("\n")), []byte("\r"))
	if len(text) == 2*SaltSize {
		if salt, err := hex.DecodeString(string(text)); err == nil {
			return salt, nil
		}
	}
	// The content is secret: describe it, never quote it.
	return nil, fmt.Errorf("load audit salt: %s does not hold %d bytes, raw or as %d hex characters", path, SaltSize, 2*SaltSize)
}
