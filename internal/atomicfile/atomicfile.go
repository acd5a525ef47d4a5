// Package atomicfile replaces files so that a crash or a power loss leaves
// either the old content or the new, never a torn mix or an empty file:
// write a temporary file in the same directory, fsync it, rename it over
// the target, fsync the directory. The file store's secrets, the audit
// anchor and `rotor run`'s env file are written this way.
//
// A reader never sees a partial file, because rename replaces the
// directory entry at once. The two fsyncs make it durable: the first
// puts the content on disk before the name points at it, the second the
// rename itself.
package atomicfile

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// WriteFile atomically replaces the file at path with what write writes,
// with permissions perm (not subject to the umask). The temporary file is
// created in path's directory with the os.CreateTemp pattern tempPattern,
// or "." + the base name + ".tmp-*" when tempPattern is empty; a caller
// that cleans up after crashes passes a pattern it recognises. On failure
// the temporary file is removed and path is unchanged.
func WriteFile(path, tempPattern string, perm fs.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	if tempPattern == "" {
		tempPattern = "." + filepath.Base(path) + ".tmp-*"
	}
	tmp, err := os.CreateTemp(dir, tempPattern)
	if err != nil {
		return err
	}
	return replace(tmp, path, perm, write)
}

// WriteFileVia is [WriteFile] with a temporary file of a fixed name, tmp
// (in path's directory), for callers that serialise the writers of path
// themselves, for example with a lock. A temporary file a crash left at
// tmp is truncated and reused by the next write, so the caller never has
// to list the directory to find it.
func WriteFileVia(path, tmp string, perm fs.FileMode, write func(io.Writer) error) error {
	if filepath.Dir(tmp) != filepath.Dir(path) {
		return &fs.PathError{Op: "write", Path: tmp, Err: fs.ErrInvalid}
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	return replace(f, path, perm, write)
}

// replace fills tmp, makes it durable and renames it over path; on
// failure tmp is removed.
func replace(tmp *os.File, path string, perm fs.FileMode, write func(io.Writer) error) error {
	dir := filepath.Dir(path)
	renamed := false
	defer func() {
		if !renamed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes 0600 files; set perm anyway, the protection of what
	// is written should not rest on a library default.
	if err := tmp.Chmod(perm); err != nil {
		return err
	}
	if err := write(tmp); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	renamed = true
	return SyncDir(dir)
}

// SyncDir makes the creations, renames and removals in dir durable.
// Windows cannot open a directory for syncing, and does not need to.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
