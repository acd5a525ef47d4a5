package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"

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
func (l *Log) readAnchor() (*anchor, error) {
	f, err := os.Open(l.anchorPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit anchor: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxAnchorSize+1))
	if err != nil {
		return nil, fmt.Errorf("read audit anchor: %w", err)
	}
	broken := func(what string) error {
		return &ChainError{Reason: fmt.Sprintf("anchor file %s %s: the anchor was tampered with", l.anchorPath, what)}
	}
	if len(data) > maxAnchorSize {
		return nil, broken("is too large")
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
	return &anchor{Seq: *a.Seq, Hash: *a.Hash, MAC: *a.MAC}, nil
}

// writeAnchor replaces the anchor file atomically (see package
// atomicfile).
func (l *Log) writeAnchor(seq uint64, hash string) error {
	data, err := json.Marshal(anchor{Seq: seq, Hash: hash, MAC: anchorMAC(l.salt, seq, hash)})
	if err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	err = atomicfile.WriteFile(l.anchorPath, "", 0o600, func(w io.Writer) error {
		_, err := w.Write(append(data, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	return nil
}
