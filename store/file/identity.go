package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"filippo.io/age"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// identityPerm is the widest mode an identity file may have.
const identityPerm fs.FileMode = 0o600

// GenerateIdentity writes a new X25519 age identity to path with mode 0600,
// creating the parent directory (0700) if needed. It never overwrites: if
// path exists it returns an error wrapping fs.ErrExist. rotor init calls it.
func GenerateIdentity(path string) error {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return fmt.Errorf("generate age identity: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("generate age identity: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, identityPerm)
	if err != nil {
		return fmt.Errorf("generate age identity: %w", err)
	}
	content := fmt.Sprintf("# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), id.Recipient(), id)
	if err := writeAndSync(f, []byte(content)); err != nil {
		os.Remove(path) // created above, so it is ours to remove
		return fmt.Errorf("generate age identity %s: %w", path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("generate age identity %s: %w", path, err)
	}
	return nil
}

// writeAndSync writes data to f, flushes it to disk and closes f.
func writeAndSync(f *os.File, data []byte) error {
	_, err := f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// readIdentity reads the age identities in path. It refuses a file that
// group or others may access. Its errors never quote the file's content.
func readIdentity(path string) ([]age.Identity, age.Recipient, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("age identity %s: %w (rotor init creates it)", path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read age identity: %w", err)
	}
	defer f.Close()
	if err := checkIdentityPerm(f); err != nil {
		return nil, nil, err
	}
	// age's parse errors may quote a character of the key, so they are
	// not passed on.
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, nil, fmt.Errorf("age identity %s is not a valid age identity file (want an AGE-SECRET-KEY-1… line, as rotor init writes)", path)
	}
	r, err := recipientOf(ids[0])
	if err != nil {
		return nil, nil, fmt.Errorf("age identity %s: %w", path, err)
	}
	return ids, r, nil
}

// checkIdentityPerm refuses an identity file with permissions wider than
// 0600. Windows has no such permission bits.
func checkIdentityPerm(f *os.File) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("read age identity: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&^identityPerm != 0 {
		return fmt.Errorf("age identity %s has permissions %#o, wider than %#o (fix with: chmod 600 %s)",
			f.Name(), perm, identityPerm, f.Name())
	}
	return nil
}

// recipientOf returns the recipient that id decrypts for.
func recipientOf(id age.Identity) (age.Recipient, error) {
	switch id := id.(type) {
	case *age.X25519Identity:
		return id.Recipient(), nil
	case *age.HybridIdentity:
		return id.Recipient(), nil
	}
	return nil, fmt.Errorf("unsupported identity type %T", id)
}
