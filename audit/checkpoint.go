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
	"strconv"
	"syscall"
	"time"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// A saves checkpoint is what a [Saves] knew at a record of the chain: the
// record's seq and hash, where it is stored, and the last save of every
// secret up to it. A new [Saves] starts from the checkpoint instead of the
// first record, so that a one-shot command's first load reads the
// checkpoint and what was appended after it, not the whole history.
//
// It is stored as a header and a body. The header is a JSON object
//
//	{"seq":N,"hash":"…","at":A,"parts":["<sha256 of part 1>",…],"mac":"…"}
//
// where at is, in a local log, the offset just past record N's line and,
// on a shared chain, the key of the batch whose last record is N; the
// body, the JSON object {"<secret>":{"seq":…,"version":…,"digest":…},…},
// is cut into parts of at most [MaxBackendValue] bytes on a shared chain
// and is one part in a log. mac is the HMAC-SHA256, keyed with the salt,
// of the strings "rotor-audit-checkpoint-v1", seq, hash, at, the number
// of parts and each part's digest, encoded as record hashes are (see
// [writeCanonical]): nobody without the salt can make one.
//
// A checkpoint is an optimisation, never the source of truth: it holds
// nothing the records up to N do not, and it is trusted only when its MAC
// checks and the chain holds record N with the hash it names, which pins
// every record before N (each record's hash covers its predecessor's).
// Its MAC failing, or record N missing or another, is tampering (rotor
// writes a checkpoint whole, only after record N is durable and anchored)
// and is reported as a [*ChainError], as is a log's checkpoint whose body
// is not the one its header names (the file is replaced whole); on a
// shared chain, parts that do not match the header are a checkpoint being
// replaced by another writer, and cost a read from the first record.
type savesCheckpoint struct {
	seq   uint64
	hash  string
	at    uint64
	saves map[string]Save
}

// checkpointDomain keeps checkpoint MACs, which share the salt with
// record hashes and anchor MACs, from ever being valid as either.
const checkpointDomain = "rotor-audit-checkpoint-v1"

// maxCheckpointParts bounds what a reader takes for a checkpoint: 64 MiB,
// the saves of about half a million secrets.
const maxCheckpointParts = 256

// Where a [Shared] keeps its checkpoint: the header and the parts.
const (
	checkpointKey     = "checkpoint/head"
	checkpointPartDir = "checkpoint/"
)

func checkpointPartKey(i int) string { return checkpointPartDir + strconv.Itoa(i) }

// checkpointHeader is the header's JSON form.
type checkpointHeader struct {
	Seq   uint64   `json:"seq"`
	Hash  string   `json:"hash"`
	At    uint64   `json:"at"`
	Parts []string `json:"parts"`
	MAC   string   `json:"mac"`
}

// savedJSON is a [Save]'s JSON form in a checkpoint's body.
type savedJSON struct {
	Seq     uint64 `json:"seq"`
	Version uint64 `json:"version"`
	Digest  string `json:"digest"`
}

func checkpointMAC(salt []byte, seq uint64, hash string, at uint64, parts []string) string {
	m := hmac.New(sha256.New, salt)
	fields := append([]string{checkpointDomain, strconv.FormatUint(seq, 10), hash,
		strconv.FormatUint(at, 10), strconv.Itoa(len(parts))}, parts...)
	writeCanonical(m, fields...)
	return hex.EncodeToString(m.Sum(nil))
}

// encode returns cp's header and its body cut into parts of at most
// partSize bytes (one part when partSize is 0).
func (cp *savesCheckpoint) encode(salt []byte, partSize int) (header []byte, parts [][]byte, err error) {
	saves := make(map[string]savedJSON, len(cp.saves))
	for name, s := range cp.saves {
		saves[name] = savedJSON(s)
	}
	body, err := json.Marshal(saves) // keys sorted: the same saves encode alike
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxCheckpointParts*MaxBackendValue {
		return nil, nil, fmt.Errorf("the checkpoint takes %d bytes, more than a reader takes", len(body))
	}
	for len(body) > 0 {
		n := len(body)
		if partSize > 0 {
			n = min(n, partSize)
		}
		parts, body = append(parts, body[:n]), body[n:]
	}
	h := checkpointHeader{Seq: cp.seq, Hash: cp.hash, At: cp.at, Parts: make([]string, len(parts))}
	for i, p := range parts {
		sum := sha256.Sum256(p)
		h.Parts[i] = hex.EncodeToString(sum[:])
	}
	h.MAC = checkpointMAC(salt, h.Seq, h.Hash, h.At, h.Parts)
	header, err = json.Marshal(h)
	return header, parts, err
}

// decodeCheckpointHeader parses a header and checks its MAC; where says
// where it was read, for the error.
func decodeCheckpointHeader(salt, data []byte, where string) (*checkpointHeader, error) {
	broken := func(what string) error {
		return &ChainError{Reason: fmt.Sprintf("the saves checkpoint %s %s: it was tampered with", where, what)}
	}
	var h struct {
		Seq   *uint64  `json:"seq"`
		Hash  *string  `json:"hash"`
		At    *uint64  `json:"at"`
		Parts []string `json:"parts"`
		MAC   *string  `json:"mac"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || dec.More() || h.Seq == nil || h.Hash == nil || h.At == nil || h.Parts == nil || h.MAC == nil {
		return nil, broken("does not parse")
	}
	if len(h.Parts) > maxCheckpointParts {
		return nil, broken("has too many parts")
	}
	// Nothing below is used before the MAC says a holder of the salt
	// wrote it.
	if !hashEqual(*h.MAC, checkpointMAC(salt, *h.Seq, *h.Hash, *h.At, h.Parts)) {
		return nil, broken("has a wrong MAC")
	}
	if *h.Seq == 0 || *h.At == 0 || len(*h.Hash) != hashHexLen {
		return nil, broken("names no record")
	}
	return &checkpointHeader{Seq: *h.Seq, Hash: *h.Hash, At: *h.At, Parts: h.Parts}, nil
}

// errCheckpointParts means a checkpoint's body does not match its header:
// another writer is replacing the checkpoint (or replaced a part since).
var errCheckpointParts = errors.New("the checkpoint's parts do not match its header")

// checkpointBody checks parts against h and decodes the saves they hold.
func checkpointBody(h *checkpointHeader, parts [][]byte) (*savesCheckpoint, error) {
	if len(parts) != len(h.Parts) {
		return nil, errCheckpointParts
	}
	var body []byte
	for i, p := range parts {
		sum := sha256.Sum256(p)
		if !hashEqual(hex.EncodeToString(sum[:]), h.Parts[i]) {
			return nil, errCheckpointParts
		}
		body = append(body, p...)
	}
	var saves map[string]savedJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	// The MAC vouches for the parts: a body that does not decode was
	// written by a salt holder, which is no tampering this package can
	// detect; it is refused all the same.
	if err := dec.Decode(&saves); err != nil || dec.More() {
		return nil, &ChainError{Seq: h.Seq, Reason: "the saves checkpoint does not decode"}
	}
	cp := &savesCheckpoint{seq: h.Seq, hash: h.Hash, at: h.At, saves: make(map[string]Save, len(saves))}
	for name, s := range saves {
		if s.Seq == 0 || s.Seq > h.Seq {
			return nil, &ChainError{Seq: h.Seq, Reason: "the saves checkpoint names a save outside the records it covers"}
		}
		cp.saves[name] = Save(s)
	}
	return cp, nil
}

// Checkpoint writing: a [Saves] writes one when what it read after the
// checkpoint it started from (or the first record) takes more bytes than
// the new checkpoint will, and at least minCheckpointRead, so that
// checkpoints never cost more to write than the reads they save, and a
// first load reads at most about twice the checkpoint's size plus
// minCheckpointRead, whatever the length of the chain.
const (
	minCheckpointRead = 256 << 10
	// checkpointEntrySize estimates the bytes of one save in a
	// checkpoint's body, besides the secret's name.
	checkpointEntrySize = 110
)

// checkpointPath is where a [Log] keeps its checkpoint: next to the
// anchor, out of reach of whoever can only write the log.
func (l *Log) checkpointPath() string { return l.anchorPath + ".checkpoint" }

// loadCheckpoint implements savesSource: the log's checkpoint, checked
// against the record it names, or nil when there is none.
func (l *Log) loadCheckpoint(ctx context.Context) (*savesCheckpoint, time.Time, error) {
	path := l.checkpointPath()
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	if !fi.Mode().IsRegular() {
		return nil, time.Time{}, &ChainError{Reason: fmt.Sprintf("the saves checkpoint %s is not a regular file (%s): it was tampered with", path, fi.Mode().Type())}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCheckpointParts*MaxBackendValue+maxLineSize))
	if err != nil {
		return nil, time.Time{}, err
	}
	header, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		header = nil
	}
	h, err := decodeCheckpointHeader(l.salt, header, path)
	if err != nil {
		return nil, time.Time{}, err
	}
	cp, err := checkpointBody(h, [][]byte{body})
	if errors.Is(err, errCheckpointParts) {
		// The file is replaced whole: a body that is not the header's
		// was put there.
		return nil, time.Time{}, &ChainError{Seq: h.Seq, Reason: fmt.Sprintf("the saves checkpoint %s holds another body than its header names: it was tampered with", path)}
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	at, err := l.checkpointRecord(ctx, cp)
	if err != nil {
		return nil, time.Time{}, err
	}
	return cp, at, nil
}

// checkpointRecord checks that the log holds cp's record where cp says,
// and returns its timestamp.
func (l *Log) checkpointRecord(ctx context.Context, cp *savesCheckpoint) (time.Time, error) {
	gone := func(what string) error {
		return &ChainError{Seq: cp.seq, Reason: fmt.Sprintf("the saves checkpoint names record %d, %s: the log was rewritten, or put back from an older copy", cp.seq, what)}
	}
	s, err := l.snapshot(ctx)
	if err != nil {
		return time.Time{}, err
	}
	if s.f == nil {
		return time.Time{}, gone("but the log does not exist")
	}
	defer s.f.Close()
	end := int64(cp.at)
	if end > s.size || end < 0 {
		return time.Time{}, gone(fmt.Sprintf("ending at byte %d, but the log holds %d bytes", end, s.size))
	}
	var nl [1]byte
	if _, err := s.f.ReadAt(nl[:], end-1); err != nil {
		return time.Time{}, err
	}
	if nl[0] != '\n' {
		return time.Time{}, gone(fmt.Sprintf("ending at byte %d, but no line ends there", end))
	}
	line, _, err := lineBefore(s.f, end)
	if err != nil {
		return time.Time{}, gone(fmt.Sprintf("ending at byte %d, which cannot be read (%v)", end, err))
	}
	rec, err := parseRecord(line)
	if err != nil || rec.Seq != cp.seq || !hashEqual(rec.Hash, cp.hash) || !hashEqual(recordHash(l.salt, &rec), rec.Hash) {
		return time.Time{}, gone("but the log holds another record there")
	}
	return rec.Timestamp, nil
}

// storeCheckpoint implements savesSource: it replaces the checkpoint
// file, atomically.
func (l *Log) storeCheckpoint(_ context.Context, cp *savesCheckpoint) error {
	header, parts, err := cp.encode(l.salt, 0)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(l.checkpointPath(), "", 0o600, func(w io.Writer) error {
		if _, err := w.Write(append(header, '\n')); err != nil {
			return err
		}
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadCheckpoint implements savesSource: the chain's checkpoint, checked
// against the batch it names, or nil when there is none or it is being
// replaced. The batch is remembered, for the reads that follow.
func (s *Shared) loadCheckpoint(ctx context.Context) (*savesCheckpoint, time.Time, error) {
	data, v, err := s.b.Get(ctx, checkpointKey)
	if errors.Is(err, ErrNotExist) {
		s.sawCheckpoint(NoVersion)
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	h, err := decodeCheckpointHeader(s.salt, data, checkpointKey)
	if err != nil {
		return nil, time.Time{}, err
	}
	s.sawCheckpoint(v)
	parts := make([][]byte, len(h.Parts))
	for i := range parts {
		parts[i], _, err = s.b.Get(ctx, checkpointPartKey(i))
		if errors.Is(err, ErrNotExist) {
			return nil, time.Time{}, nil
		}
		if err != nil {
			return nil, time.Time{}, err
		}
	}
	cp, err := checkpointBody(h, parts)
	if errors.Is(err, errCheckpointParts) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, err
	}
	at, err := s.checkpointBatch(ctx, cp)
	if err != nil {
		return nil, time.Time{}, err
	}
	return cp, at, nil
}

// checkpointBatch checks that the batch cp names ends with cp's record,
// and returns that record's timestamp.
func (s *Shared) checkpointBatch(ctx context.Context, cp *savesCheckpoint) (time.Time, error) {
	key := batchKey(cp.at)
	gone := func(what string) error {
		return &ChainError{Seq: cp.seq, Reason: fmt.Sprintf("the saves checkpoint names record %d at the end of %s, %s: the chain was rewritten, or put back from an older copy", cp.seq, key, what)}
	}
	if cp.at > cp.seq {
		return time.Time{}, gone("which cannot hold it")
	}
	data, _, err := s.b.Get(ctx, key)
	if errors.Is(err, ErrNotExist) {
		return time.Time{}, gone("which does not exist")
	}
	if err != nil {
		return time.Time{}, err
	}
	// The records of the batch are checked from its own first on: the
	// hash of the last, which covers every record before it, is the one
	// that must match.
	c := s.batchChecker(cp.at, data)
	if err := s.checkBatch(c, cp.at, data, nil); err != nil {
		return time.Time{}, gone(fmt.Sprintf("which does not check (%v)", err))
	}
	if c.n != cp.seq || !hashEqual(c.headHash(), cp.hash) {
		return time.Time{}, gone("but it ends with another record")
	}
	s.remember(cp.at, data)
	return c.last, nil
}

// storeCheckpoint implements savesSource: it writes the parts, then the
// header by compare-and-swap at the version this Shared last saw, so
// that of two writers one wins; a reader that finds parts of the other
// in between reads from the first record.
func (s *Shared) storeCheckpoint(ctx context.Context, cp *savesCheckpoint) error {
	header, parts, err := cp.encode(s.salt, MaxBackendValue)
	if err != nil {
		return err
	}
	for i, p := range parts {
		if err := s.overwrite(ctx, checkpointPartKey(i), p); err != nil {
			return err
		}
	}
	v, err := s.b.Put(ctx, checkpointKey, header, s.checkpointVersion())
	if err != nil {
		return err
	}
	s.sawCheckpoint(v)
	return nil
}

// overwrite stores value under key, whatever it held.
func (s *Shared) overwrite(ctx context.Context, key string, value []byte) error {
	_, err := s.b.Put(ctx, key, value, NoVersion)
	if !errors.Is(err, ErrConflict) {
		return err
	}
	_, v, err := s.b.Get(ctx, key)
	if err != nil {
		return err
	}
	_, err = s.b.Put(ctx, key, value, v)
	return err
}

// sawCheckpoint records the checkpoint header's version as read or
// written.
func (s *Shared) sawCheckpoint(v Version) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	s.cpV = v
}

func (s *Shared) checkpointVersion() Version {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.cpV
}
