// Package file is rotor's embedded default [store.Store]: a directory of
// age-encrypted files, one per secret, so rotor runs on a laptop with
// nothing else installed.
//
// # Layout
//
// The store directory (mode 0700, created by [New]; see "Who may write the
// directory") holds, for a secret called name:
//
//	name.age        the secret: age-encrypted JSON {"format", "version", "secret"}
//	.name.lock      the lock file serialising saves of name (empty, never removed)
//	.name+tmp       the temporary file of a save in flight
//
// Upper-case letters in name are written as '!' and the lower-case letter
// (API-KEY becomes !a!p!i-!k!e!y.age), so names that differ only in case stay
// distinct on case-insensitive file systems. A name whose file names would
// then pass the 255 bytes file systems allow (a long upper-case one) is
// written in lower case followed by '~' and a hex mask of its upper-case
// positions instead, so that every valid name is storable. Every file is mode 0600. Files
// starting with '.' are never secrets: [Store.Load] and [Store.List] ignore
// them.
//
// # Encryption
//
// Each file is encrypted to the recipient of the first identity in the age
// identity file given to [New] (written by [GenerateIdentity], for example by
// rotor init) and decrypted with any identity in that file. Names are not
// secret: they are the file names.
//
// # Guarantees
//
// The version of a secret is an integer inside the encrypted document, 1 on
// create and one more on every save; [store.Version] is its decimal string.
// [Store.Save] is a compare-and-swap that holds across processes, not just
// goroutines: under an exclusive flock(2) on the secret's lock file it reads
// the stored version, compares it with the expected one, writes the new
// document to a temporary file in the same directory, fsyncs it, renames it
// over the secret file and fsyncs the directory. The lock is released by
// the kernel if the process dies, so a crash never leaves a stale lock, and a
// crash at any point leaves either the old or the new file, never a partial
// one.
//
// # Cost
//
// A save touches the files of its own secret only: it never lists the
// directory, so its cost does not grow with the number of secrets or of
// unrelated files beside them. The temporary file of a save has a fixed
// name per secret: a file a crashed save left there is ignored by readers
// and overwritten by the next save of that secret. [New] lists the
// directory once, and removes the temporary files of crashed saves whose
// lock is free (a save in flight in another process keeps its file).
//
// To learn the stored version, a save reads the file but decrypts it only
// when its content is not the one this Store last wrote or decrypted for
// that secret (compared by SHA-256 digest): another writer's file always
// differs, since age encrypts every file with a fresh random key.
//
// [Store.Load] takes no lock: the rename is atomic, so a reader sees one
// complete version or the other.
//
// # Who may write the directory
//
// Whoever can write the store directory can put back an old file, remove
// one or plant another in its place, so [New] refuses a directory that
// group or others may write. Loads refuse what rotor never writes there:
// anything but a regular file (a FIFO would block the read), a symbolic
// link, or a file larger than 4 MiB. An old file put back by someone who
// can write the directory is a valid file, and this package cannot tell it
// from the current one (see rotor's README, "Security model").
package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/gofrs/flock"

	"github.com/rotor-dev/rotor/internal/atomicfile"
	"github.com/rotor-dev/rotor/store"
)

// ErrWrongIdentity means a stored secret is encrypted to a different age
// identity than the one the store was opened with.
var ErrWrongIdentity = errors.New("age identity does not match the store")

// formatVersion is the version of the document layout inside each file.
const formatVersion = 1

// maxFileSize bounds what is read from a secret file, and
// maxDocumentSize what Save encrypts into one, leaving room for age's
// header and per-chunk tags so that every file written can be read back.
const (
	maxFileSize     = 4 << 20
	maxDocumentSize = 3 << 20
)

// lockRetry is how often Save retries a lock held by another writer.
const lockRetry = 2 * time.Millisecond

// Store is a directory of age-encrypted secret files. It is safe for
// concurrent use by goroutines and by processes sharing the directory.
type Store struct {
	dir          string
	identityPath string
	identities   []age.Identity
	recipient    age.Recipient

	// mu guards known.
	mu sync.Mutex
	// known holds, per secret, the digest of the file this Store last
	// wrote or decrypted and the version inside it; see versionOf.
	known map[string]knownFile
}

// knownFile is a secret file whose version this Store has seen: the
// SHA-256 of its encrypted content, and the version inside it.
type knownFile struct {
	sum     [sha256.Size]byte
	version uint64
}

var (
	_ store.Store  = (*Store)(nil)
	_ store.Lister = (*Store)(nil)
)

// document is the plaintext of a secret file.
type document struct {
	Format  int           `json:"format"`
	Version uint64        `json:"version"`
	Secret  *store.Secret `json:"secret"`
}

func (d *document) version() store.Version {
	return store.Version(strconv.FormatUint(d.Version, 10))
}

// New opens the store in dir, creating dir (0700) if it is missing, with the
// age identity in identityPath. It fails if the identity file is missing, is
// not an age identity, may be read by group or others, or cannot decrypt a
// secret already in dir (an error wrapping [ErrWrongIdentity]).
func New(dir, identityPath string) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open file store: no directory given")
	}
	ids, r, err := readIdentity(identityPath)
	if err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if err := checkDir(dir); err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	s := &Store{dir: dir, identityPath: identityPath, identities: ids, recipient: r, known: map[string]knownFile{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open file store: %w", err)
	}
	if err := s.checkIdentity(entries); err != nil {
		return nil, fmt.Errorf("open file store %s: %w", dir, err)
	}
	s.removeTemps(entries)
	return s, nil
}

// checkIdentity decrypts one stored secret among entries, if there is any,
// so that a wrong identity is reported when the store is opened rather than
// on first use. Other read errors are left for Load to report.
func (s *Store) checkIdentity(entries []os.DirEntry) error {
	for _, e := range entries {
		if name, ok := nameOfSecretFile(e.Name()); ok && e.Type().IsRegular() {
			if _, err := s.read(name); errors.Is(err, ErrWrongIdentity) {
				return err
			}
			return nil
		}
	}
	return nil
}

// removeTemps removes, among entries, the temporary files that crashed
// saves left behind. A file whose secret's lock is held belongs to a save
// in flight and stays. Failures are harmless: the files are ignored
// everywhere, and the next save of their secret overwrites them.
func (s *Store) removeTemps(entries []os.DirEntry) {
	for _, e := range entries {
		name, ok := tempOwner(e.Name())
		if !ok {
			continue
		}
		fl := flock.New(filepath.Join(s.dir, lockFile(name)), flock.SetPermissions(0o600))
		if locked, err := fl.TryLock(); err == nil && locked {
			os.Remove(filepath.Join(s.dir, e.Name()))
			fl.Unlock()
		}
	}
}

// Load returns the secret called name and its version, or an error wrapping
// [store.ErrNotFound].
func (s *Store) Load(ctx context.Context, name string) (*store.Secret, store.Version, error) {
	if err := ctx.Err(); err != nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, err)
	}
	if err := store.ValidateName(name); err != nil {
		return nil, store.NoVersion, fmt.Errorf("load: %w", err)
	}
	doc, err := s.read(name)
	if err != nil {
		return nil, store.NoVersion, fmt.Errorf("load %s: %w", name, err)
	}
	return doc.Secret, doc.version(), nil
}

// Save writes sec if its stored version is expected and returns the new
// version; see [store.Store]. It fails with an error wrapping
// [store.ErrConflict] when the stored version is another, and writes nothing
// when sec is invalid.
func (s *Store) Save(ctx context.Context, sec *store.Secret, expected store.Version) (store.Version, error) {
	if sec == nil {
		return store.NoVersion, errors.New("save: nil secret")
	}
	if err := sec.Validate(); err != nil {
		return store.NoVersion, fmt.Errorf("save: %w", err)
	}
	name := sec.Name
	if err := ctx.Err(); err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", name, err)
	}
	unlock, err := s.lock(ctx, name)
	if err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", name, err)
	}
	defer unlock()

	stored, err := s.storedVersion(name)
	if err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", name, err)
	}
	if err := checkVersion(stored, expected); err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", name, err)
	}
	doc := &document{Format: formatVersion, Version: stored + 1, Secret: sec}
	if err := s.write(doc); err != nil {
		return store.NoVersion, fmt.Errorf("save %s: %w", name, err)
	}
	return doc.version(), nil
}

// storedVersion returns the version number of name, 0 if it does not
// exist. The caller holds the lock of name.
//
// A save must know the stored version, but decrypting the file to learn
// it costs an X25519 operation, the largest part of a save after the
// fsyncs. So the Store remembers the digest of the file it last wrote or
// decrypted for each secret: when the file holds exactly those bytes, its
// version is the one remembered. Any other write, by another process or
// another Store, encrypts with a fresh random file key, so its bytes (and
// their digest) differ and the file is decrypted as before. The digest
// identifies the content itself, not the file's inode or timestamps, which
// a quick succession of writes may leave unchanged.
func (s *Store) storedVersion(name string) (uint64, error) {
	path, data, err := s.readFile(name)
	if errors.Is(err, store.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	sum := sha256.Sum256(data)
	s.mu.Lock()
	k, ok := s.known[name]
	s.mu.Unlock()
	if ok && k.sum == sum {
		return k.version, nil
	}
	doc, err := s.decodeFile(name, path, data, sum)
	if err != nil {
		return 0, err
	}
	return doc.Version, nil
}

// remember records that the file of name with digest sum holds version.
func (s *Store) remember(name string, sum [sha256.Size]byte, version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known[name] = knownFile{sum: sum, version: version}
}

// checkVersion returns an error wrapping store.ErrConflict unless the stored
// version number (0: none) is the one expected.
func checkVersion(stored uint64, expected store.Version) error {
	var have store.Version
	if stored > 0 {
		have = store.Version(strconv.FormatUint(stored, 10))
	}
	switch {
	case have == expected:
		return nil
	case expected == store.NoVersion:
		return fmt.Errorf("secret already exists at version %s: %w", have, store.ErrConflict)
	case have == store.NoVersion:
		return fmt.Errorf("expected version %q but the secret does not exist: %w", expected, store.ErrConflict)
	}
	return fmt.Errorf("expected version %q, stored version is %s: %w", expected, have, store.ErrConflict)
}

// List returns the names of all stored secrets, sorted.
func (s *Store) List(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	names, err := s.names()
	if err != nil {
		return nil, fmt.Errorf("list: %w", err)
	}
	return names, nil
}

// names returns the sorted names of the secret files in the directory.
func (s *Store) names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	names := []string{}
	for _, e := range entries {
		if name, ok := nameOfSecretFile(e.Name()); ok && e.Type().IsRegular() {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// checkDir refuses a store directory that is not a directory or that
// group or others may write: whoever can write it can put back an old
// version of a secret, remove one, or plant a file in its place.
func checkDir(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	// Windows has no Unix permission bits; its ACLs are the operator's job.
	if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o022 != 0 {
		return fmt.Errorf("store directory %s has mode %04o: group or others may write it, and so replace or remove secrets (chmod 700 %s)", dir, perm, dir)
	}
	return nil
}

// read reads and decrypts the file of name. It returns store.ErrNotFound if
// there is none.
func (s *Store) read(name string) (*document, error) {
	path, data, err := s.readFile(name)
	if err != nil {
		return nil, err
	}
	return s.decodeFile(name, path, data, sha256.Sum256(data))
}

// decodeFile decrypts data, the content of the file of name at path whose
// digest is sum, checks that it holds name and remembers its version.
func (s *Store) decodeFile(name, path string, data []byte, sum [sha256.Size]byte) (*document, error) {
	doc, err := s.decode(path, data)
	if err != nil {
		return nil, err
	}
	if doc.Secret.Name != name {
		return nil, fmt.Errorf("%s holds secret %q, not %q", path, doc.Secret.Name, name)
	}
	s.remember(name, sum, doc.Version)
	return doc, nil
}

// readFile returns the path and the encrypted content of the file of
// name. It returns store.ErrNotFound if there is none, and refuses
// anything but a regular file of at most maxFileSize bytes: a FIFO in its
// place would block the read (and with it every command), a device or a
// huge file would exhaust memory.
func (s *Store) readFile(name string) (string, []byte, error) {
	path := filepath.Join(s.dir, secretFile(name))
	// O_NONBLOCK makes opening a FIFO return at once instead of waiting
	// for a writer; on regular files it changes nothing. O_NOFOLLOW
	// refuses a symbolic link: rotor only ever renames regular files here.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|oNoFollow, 0)
	if errors.Is(err, os.ErrNotExist) {
		return path, nil, store.ErrNotFound
	}
	if errors.Is(err, syscall.ELOOP) {
		return path, nil, fmt.Errorf("%s is a symbolic link, not a file rotor wrote", path)
	}
	if err != nil {
		return path, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return path, nil, err
	}
	if !fi.Mode().IsRegular() {
		return path, nil, fmt.Errorf("%s is not a regular file (mode %s)", path, fi.Mode().Type())
	}
	if fi.Size() > maxFileSize {
		return path, nil, fmt.Errorf("%s is %d bytes, more than any secret file rotor writes (%d)", path, fi.Size(), maxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return path, nil, err
	}
	if len(data) > maxFileSize {
		return path, nil, fmt.Errorf("%s is more than %d bytes, more than any secret file rotor writes", path, maxFileSize)
	}
	return path, data, nil
}

// decode decrypts and parses the content of the secret file path.
func (s *Store) decode(path string, data []byte) (*document, error) {
	r, err := age.Decrypt(bytes.NewReader(data), s.identities...)
	if errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, fmt.Errorf("decrypt %s: %w: %s cannot decrypt it", path, ErrWrongIdentity, s.identityPath)
	}
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", path, err)
	}
	plain, err := io.ReadAll(r)
	defer clear(plain)
	if err != nil {
		return nil, fmt.Errorf("decrypt %s: %w", path, err)
	}
	var doc document
	if err := json.Unmarshal(plain, &doc); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	if doc.Format != formatVersion || doc.Version == 0 || doc.Secret == nil {
		return nil, fmt.Errorf("decode %s: unsupported format %d (version %d)", path, doc.Format, doc.Version)
	}
	return &doc, nil
}

// write atomically replaces the file of doc.Secret with doc, encrypted.
// The caller holds the lock of the secret.
func (s *Store) write(doc *document) error {
	plain, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	defer clear(plain)
	if len(plain) > maxDocumentSize {
		return fmt.Errorf("encode: the secret is %d bytes, more than the %d a store file may hold (revoke retired keys)", len(plain), maxDocumentSize)
	}

	name := doc.Secret.Name
	h := sha256.New()
	err = atomicfile.WriteFileVia(filepath.Join(s.dir, secretFile(name)), filepath.Join(s.dir, tempFile(name)), 0o600, func(w io.Writer) error {
		if err := s.encrypt(io.MultiWriter(w, h), plain); err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
		return nil
	})
	if err != nil {
		// The file may hold either content: let the next save decrypt it.
		s.forget(name)
		return err
	}
	s.remember(name, [sha256.Size]byte(h.Sum(nil)), doc.Version)
	return nil
}

// forget drops what the Store remembers of the file of name.
func (s *Store) forget(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.known, name)
}

func (s *Store) encrypt(dst io.Writer, plain []byte) error {
	w, err := age.Encrypt(dst, s.recipient)
	if err != nil {
		return err
	}
	if _, err := w.Write(plain); err != nil {
		return err
	}
	return w.Close()
}

// lock takes the exclusive lock of name, waiting while another goroutine or
// process holds it or until ctx is done. It returns the function releasing
// it.
func (s *Store) lock(ctx context.Context, name string) (unlock func(), err error) {
	// A Flock value is not shared: one instance held by two goroutines
	// would let the second one through.
	fl := flock.New(filepath.Join(s.dir, lockFile(name)), flock.SetPermissions(0o600))
	ok, err := fl.TryLockContext(ctx, lockRetry)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", fl.Path(), err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: not acquired", fl.Path())
	}
	return func() { fl.Unlock() }, nil
}
