package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// anchor is the chain head as last recorded apart from the log.
type anchor struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	MAC  string `json:"mac"`
}

// maxAnchorSize bounds what is read from the anchor file.
const maxAnchorSize = 4 << 10

func anchorMAC(salt []byte, seq uint64, hash string) string {
	m := hmac.New(sha256.New, salt)
	writeCanonical(m, anchorDomain, strconv.FormatUint(seq, 10), hash)
	return hex.EncodeToString(m.Sum(nil))
}

// readAnchor returns the anchor, or nil when the file does not exist. An
// anchor that does not parse or whose MAC is wrong is a *ChainError.
//
// Whatever stands at the anchor's path that is not a regular file (a
// directory, a FIFO, a device, a link to one) is a tampered anchor too,
// not an I/O error: rotor only ever writes a regular file there. It is
// opened without blocking, so a FIFO put in its place cannot hang rotor.
func (l *Log) readAnchor() (*anchor, error) {
	broken := func(what string) error {
		return &ChainError{Reason: fmt.Sprintf("anchor file %s %s: the anchor was tampered with", l.anchorPath, what)}
	}
	f, err := os.OpenFile(l.anchorPath, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit anchor: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read audit anchor: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, broken(fmt.Sprintf("is not a regular file (%s)", fi.Mode().Type()))
	}
	data, err := io.ReadAll(io.LimitReader(f, maxAnchorSize+1))
	if err != nil {
		return nil, fmt.Errorf("read audit anchor: %w", err)
	}
	if len(data) > maxAnchorSize {
		return nil, broken("is too large")
	}
	if a, ok := l.checked.checkedAnchor(data); ok {
		return a, nil
	}
	var a struct {
		Seq  *uint64 `json:"seq"`
		Hash *string `json:"hash"`
		MAC  *string `json:"mac"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || dec.More() || a.Seq == nil || a.Hash == nil || a.MAC == nil {
		return nil, broken("does not parse")
	}
	// The MAC covers seq and hash; checking it first means everything
	// below is known to have been written by a holder of the salt.
	if !hashEqual(*a.MAC, anchorMAC(l.salt, *a.Seq, *a.Hash)) {
		return nil, broken("has a wrong MAC")
	}
	checked := anchor{Seq: *a.Seq, Hash: *a.Hash, MAC: *a.MAC}
	l.checked.setAnchor(data, checked)
	return &checked, nil
}

// anchorSize is the size of an anchor file: the JSON object padded with
// spaces, and a newline. It is well inside the 512 bytes a disk writes as
// a whole, so the anchor can be overwritten in place: a crash leaves the
// old anchor or the new one, never a mix.
const anchorSize = 256

// anchorSyncEvery is how often the anchor is fsynced. It is written after
// every commit, but fsynced at most this often: a record is durable once
// the log is synced, and an anchor that a power failure sets back is one
// that lags the log, which still verifies and which the next append
// brings up to date. Between syncs the kernel writes it back on its own.
const anchorSyncEvery = time.Second

// advanceAnchor moves the anchor to seq and hash, records already synced
// to the log, unless it already names seq or a later record (another
// commit, of this process or another, got there first).
func (l *Log) advanceAnchor(ctx context.Context, seq uint64, hash string) error {
	release, err := l.acquire(ctx)
	if err != nil {
		return err
	}
	defer release()
	a, err := l.readAnchor()
	if err != nil {
		return err
	}
	if a != nil && a.Seq >= seq {
		return nil
	}
	return l.writeAnchor(seq, hash)
}

// writeAnchor overwrites the anchor file in place with one write, creating
// it if needed. A new anchor file and its directory entry are fsynced at
// once; after that, the anchor is fsynced at most every anchorSyncEvery.
// The caller holds the lock.
func (l *Log) writeAnchor(seq uint64, hash string) error {
	a := anchor{Seq: seq, Hash: hash, MAC: anchorMAC(l.salt, seq, hash)}
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	block := bytes.Repeat([]byte{' '}, anchorSize)
	copy(block, data)
	block[anchorSize-1] = '\n'
	f, err := os.OpenFile(l.anchorPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	// The anchor's protection should not rest on a umask or on whoever
	// created the file.
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fmt.Errorf("write audit anchor: %w", err)
		}
	}
	created := fi.Size() == 0
	if _, err := f.WriteAt(block, 0); err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	if fi.Size() > anchorSize {
		// An anchor written by hand, or by an older rotor, may be longer.
		if err := f.Truncate(anchorSize); err != nil {
			return fmt.Errorf("write audit anchor: %w", err)
		}
	}
	l.checked.setAnchor(block, a)
	if now := time.Now(); created || now.Sub(l.anchorSynced) >= anchorSyncEvery {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("write audit anchor: %w", err)
		}
		if created {
			if err := atomicfile.SyncDir(filepath.Dir(l.anchorPath)); err != nil {
				return fmt.Errorf("write audit anchor: %w", err)
			}
		}
		l.anchorSynced = now
	}
	return nil
}
