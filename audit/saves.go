package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// ChainHead names the last record of a chain: its seq and hash; seq 0
// and [GenesisHash] for a chain without records.
type ChainHead struct {
	Seq  uint64
	Hash string
}

// Save is what a chain last recorded about the saves of one secret: the
// version 2 record naming it with the highest store version (the last one
// when several record the same version).
type Save struct {
	// Seq is the record's seq.
	Seq uint64
	// Version is the save count the stored secret carried after the save.
	Version uint64
	// Digest is the keyed digest of the state saved.
	Digest string
}

// Saves follows the saves a chain records, for the check of a stored
// secret against the chain (package binding) on every load. It reads the
// chain once, at its first [Saves.Latest], and after that only what was
// appended since it last looked, checking every record and link as
// Verify does: a load costs the records appended since the last one, not
// the length of the chain. It remembers one [Save] per secret.
//
// # Checkpoints
//
// The first read starts from the chain's saves checkpoint when there is
// one: what a Saves knew at a record of the chain (its seq and hash, and
// the last save of every secret up to it), MACed with the salt and kept
// next to the log's anchor (<anchor>.checkpoint) or in the shared chain's
// backend (checkpoint/head and checkpoint/<n>). It reads the checkpoint,
// checks that the chain holds the record it names with the hash it
// names, which pins every record before it, and reads on from there: a
// one-shot command's first load costs the checkpoint and what was
// appended after it, not the whole history. A checkpoint whose MAC fails,
// that names a record the chain does not hold or holds with another hash
// (the chain put back from an older copy, or rewritten), or a log's whose
// body is not the one it names, is reported as a [*ChainError]: rotor
// only writes whole checkpoints of records that are durable and
// anchored. An older checkpoint than the last is as true, and only costs
// more reads.
//
// A Saves writes the checkpoint, at the last record it read when that is
// the anchored or headed one, once the records it read after the
// checkpoint it started from take more bytes than the new one will (and
// at least 256 KiB): checkpoints never cost more to write than the reads
// they save, and a first load reads at most about twice a checkpoint's
// size plus 256 KiB of records, however long the chain. Writing one is an
// optimisation, and a failure to write it (a role that may not) is
// ignored. [Saves.Scan], the full read, neither starts from one nor
// writes one; it checks it.
//
// Saves does not read records it checked before again, nor those before
// the checkpoint it started from, so a change to an old record is left to
// Verify; but a chain that shrank or whose head went back since Saves
// last looked (a log or chain put back from an older copy) is reported as
// a [*ChainError], as is a record that does not continue the ones read
// before.
//
// # On a shared chain
//
// Following a [Shared] chain, [Saves.Latest] reads the head and the
// batches up to the record it names, not beyond: a batch appended by a
// writer stopped before it moved the head is read once somebody moves the
// head past it, or by [Saves.LatestAfter] and [Saves.Scan], which read to
// the end. The batches the same [Shared] appended or read are taken from
// its memory instead of being read back (they are created once and never
// change), and the batch holding the last record read is checked to be
// still there only when new batches are read from the backend: a chain
// cut back under an unchanged head is left to Verify. An unchanged head
// costs one read.
//
// Concurrent calls of [Saves.Latest] share a read: a caller that waited
// while another read the chain takes that read's answer, which finished
// after it called and before it goes on to read the store, so it is as
// good as its own for a check that reads the chain before the store.
//
// A Saves is safe for concurrent use.
type Saves struct {
	src savesSource
	// reads counts the successful reads of the chain, for callers of
	// Latest to tell whether one finished while they waited.
	reads atomic.Uint64
	// calls counts the Latest calls in progress (a test waits on it).
	calls atomic.Int32

	mu     sync.Mutex
	c      *checker // the chain checked so far; nil before the first read
	pos    int64    // the log: bytes of complete lines read so far
	batch  uint64   // the shared chain: the batch holding the last record read
	anchor uint64   // the highest anchor or head seen
	latest map[string]Save
	want   map[uint64]string // Scan: the seqs whose hashes it returns
	// lastImport is the seq of the last ActionImport record read.
	lastImport uint64
	// cpSeq is the seq of the checkpoint this Saves started from or last
	// wrote, 0 when none; cpRead counts the bytes of records read after
	// it, and cpSize estimates the size of a checkpoint of latest.
	cpSeq  uint64
	cpRead int64
	cpSize int
	// cpCheck is the checkpoint Scan checks against the records, and
	// cpChecked whether it held the saves they record up to its record.
	cpCheck   *savesCheckpoint
	cpChecked bool
}

// savesSource reads the records a [Saves] has not read yet: at least to
// the chain's head and to the record upto ([toHead]: the head alone;
// [toEnd]: the chain's end); a source may read further.
//
// loadCheckpoint returns the chain's saves checkpoint, checked against
// the record it names, and that record's timestamp; nil when there is
// none or it cannot be used. storeCheckpoint replaces it.
type savesSource interface {
	readSaves(ctx context.Context, x *Saves, upto uint64, visit func(*rawRecord)) error
	loadCheckpoint(ctx context.Context) (*savesCheckpoint, time.Time, error)
	storeCheckpoint(ctx context.Context, cp *savesCheckpoint) error
}

// How far a [Saves] reads; any other value is a seq to read up to.
const (
	toHead uint64 = 0
	toEnd  uint64 = math.MaxUint64
	// inMemory reads only what costs no request: the local log, or the
	// batches the [Shared] holds in memory.
	inMemory uint64 = math.MaxUint64 - 1
)

// Saves returns a [Saves] following l.
func (l *Log) Saves() *Saves { return &Saves{src: l} }

// Saves returns a [Saves] following s.
func (s *Shared) Saves() *Saves { return &Saves{src: s} }

// Latest reads what was appended to the chain since the last call and
// returns the chain's head and the last save of secret it records (ok is
// false when it records none).
func (x *Saves) Latest(ctx context.Context, secret string) (head ChainHead, last Save, ok bool, err error) {
	seen := x.reads.Load()
	x.calls.Add(1)
	defer x.calls.Add(-1)
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.c == nil || x.reads.Load() == seen {
		if err := x.update(ctx, toHead); err != nil {
			return ChainHead{}, Save{}, false, err
		}
	}
	last, ok = x.latest[secret]
	return ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, last, ok, nil
}

// LatestAfter is [Saves.Latest] for a caller that knows the chain holds
// record seq (a stored state sealed after it): when the records read so
// far end before seq, it reads on, past the head if need be, until it
// has read seq or the chain ends.
func (x *Saves) LatestAfter(ctx context.Context, secret string, seq uint64) (head ChainHead, last Save, ok bool, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.c == nil || x.c.n < seq {
		if err := x.update(ctx, max(seq, 1)); err != nil {
			return ChainHead{}, Save{}, false, err
		}
	}
	last, ok = x.latest[secret]
	return ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, last, ok, nil
}

// Recent is [Saves.Latest] without a request to a shared chain's
// backend: the chain as last read, followed through the batches the
// [Shared] holds in memory (those it appended since, among them), or
// through the local log. It reads the chain when it was never read.
func (x *Saves) Recent(ctx context.Context, secret string) (head ChainHead, last Save, ok bool, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	upto := inMemory
	if x.c == nil {
		upto = toHead
	}
	if err := x.update(ctx, upto); err != nil {
		return ChainHead{}, Save{}, false, err
	}
	last, ok = x.latest[secret]
	return ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, last, ok, nil
}

// All reads what was appended to the chain since the last call and
// returns the chain's head and the last save of every secret it records.
func (x *Saves) All(ctx context.Context) (ChainHead, map[string]Save, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.update(ctx, toHead); err != nil {
		return ChainHead{}, nil, err
	}
	return ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, maps.Clone(x.latest), nil
}

// ScanResult is what [Saves.Scan] found.
type ScanResult struct {
	// Head is the chain's last record.
	Head ChainHead
	// Saves holds the last save of every secret the chain records.
	Saves map[string]Save
	// Hashes holds the hashes of the records asked for that the chain
	// holds.
	Hashes map[uint64]string
	// LastImport is the seq of the last [ActionImport] record, 0 when
	// there is none: records before it may name seqs of the imported log.
	LastImport uint64
}

// Scan reads the whole chain again, from its first record, and returns
// what [ScanResult] lists, with the hashes of the records whose seqs are
// in want. It is the full read `rotor audit verify` makes; later calls
// read incrementally from where it ended.
//
// Scan does not start from the saves checkpoint, but checks it as a first
// load would (its MAC, the record it names) and, once it has read that
// record, that the checkpoint holds exactly the saves the records up to
// it record: a checkpoint every load would refuse fails the full check
// too.
func (x *Saves) Scan(ctx context.Context, want []uint64) (ScanResult, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.c, x.want, x.lastImport = nil, make(map[uint64]string, len(want)), 0
	for _, seq := range want {
		x.want[seq] = ""
	}
	defer func() { x.want, x.cpCheck = nil, nil }()
	cp, _, err := x.src.loadCheckpoint(ctx)
	if err != nil {
		return ScanResult{}, fmt.Errorf("read audit saves checkpoint: %w", err)
	}
	x.cpCheck, x.cpChecked = cp, false
	if err := x.update(ctx, toEnd); err != nil {
		return ScanResult{}, err
	}
	if cp != nil && !x.cpChecked {
		return ScanResult{}, fmt.Errorf("read audit saves checkpoint: %w", &ChainError{Seq: cp.seq,
			Reason: fmt.Sprintf("the saves checkpoint names record %d but does not hold the saves the records up to it record: it was forged by a holder of the salt", cp.seq)})
	}
	hashes := make(map[uint64]string, len(x.want))
	for seq, h := range x.want {
		if h != "" {
			hashes[seq] = h
		}
	}
	return ScanResult{Head: ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, Saves: maps.Clone(x.latest), Hashes: hashes, LastImport: x.lastImport}, nil
}

func (x *Saves) update(ctx context.Context, upto uint64) error {
	// Scan, the full read, neither starts from a checkpoint nor writes
	// one.
	full := upto == toEnd
	if x.c == nil {
		x.c, x.pos, x.batch, x.latest = newChecker(x.salt()), 0, 0, map[string]Save{}
		x.cpSeq, x.cpRead, x.cpSize = 0, 0, 0
		if !full {
			if err := x.resume(ctx); err != nil {
				x.c, x.latest = nil, nil
				return fmt.Errorf("read audit saves checkpoint: %w", err)
			}
		}
	}
	err := x.src.readSaves(ctx, x, upto, func(r *rawRecord) {
		x.visit(r)
		if x.cpCheck != nil && r.seq == x.cpCheck.seq {
			x.cpChecked = maps.Equal(x.latest, x.cpCheck.saves)
		}
	})
	if err != nil {
		// Start again from the first record next time: what was read
		// may be part of a chain that is being repaired or was replaced.
		x.c, x.latest = nil, nil
		return err
	}
	if upto != inMemory {
		x.reads.Add(1)
		if !full {
			x.checkpoint(ctx)
		}
	}
	return nil
}

// visit takes in the record r read.
func (x *Saves) visit(r *rawRecord) {
	if _, ok := x.want[r.seq]; ok {
		x.want[r.seq] = string(r.str[fHash])
	}
	if string(r.str[fAction]) == ActionImport {
		x.lastImport = r.seq
	}
	if !r.v2 {
		return
	}
	// The highest version, not the last record: two savers may record
	// their saves in the other order than they made them.
	name := string(r.str[fSecret])
	cur, ok := x.latest[name]
	if !ok {
		x.cpSize += len(name) + checkpointEntrySize
	}
	if !ok || r.storeVersion >= cur.Version {
		x.latest[name] = Save{Seq: r.seq, Version: r.storeVersion, Digest: string(r.str[fStateDigest])}
	}
}

// resume starts x, which has read nothing, from the chain's checkpoint
// when there is one.
func (x *Saves) resume(ctx context.Context) error {
	cp, at, err := x.src.loadCheckpoint(ctx)
	if err != nil || cp == nil {
		return err
	}
	x.c.n, x.c.last = cp.seq, at
	copy(x.c.head[:], cp.hash)
	x.latest, x.cpSeq = cp.saves, cp.seq
	for name := range cp.saves {
		x.cpSize += len(name) + checkpointEntrySize
	}
	// Where the record is: an offset in the log, a batch of the shared
	// chain; each source uses its own.
	x.pos, x.batch = int64(cp.at), cp.at
	return nil
}

// checkpoint writes a checkpoint at the last record read when it is due
// (see minCheckpointRead) and that record is anchored: in a log, durable;
// in either, a record a reader that trusts the anchor or head will find.
// Writing one is an optimisation: a failure is ignored, and the next is
// tried once as much again was read.
func (x *Saves) checkpoint(ctx context.Context) {
	if x.c.n == 0 || x.c.n <= x.cpSeq || x.c.n != x.anchor || x.cpRead < max(minCheckpointRead, int64(x.cpSize)) {
		return
	}
	at := x.batch
	if _, ok := x.src.(*Log); ok {
		at = uint64(x.pos)
	}
	cp := &savesCheckpoint{seq: x.c.n, hash: x.c.headHash(), at: at, saves: x.latest}
	x.cpSeq, x.cpRead = x.c.n, 0
	_ = x.src.storeCheckpoint(ctx, cp)
}

func (x *Saves) salt() []byte {
	switch s := x.src.(type) {
	case *Log:
		return s.salt
	case *Shared:
		return s.salt
	}
	return nil
}

// readSaves implements savesSource: the lines after x.pos, to the end
// whatever upto says (the file is local: reading it is cheap).
func (l *Log) readSaves(ctx context.Context, x *Saves, _ uint64, visit func(*rawRecord)) error {
	s, err := l.snapshot(ctx)
	if err != nil {
		return fmt.Errorf("read audit log: %w", err)
	}
	if s.anchorErr != nil {
		if s.f != nil {
			s.f.Close()
		}
		return fmt.Errorf("read audit log: %w", s.anchorErr)
	}
	var size int64
	if s.f != nil {
		defer s.f.Close()
		size = s.size
	}
	if size < x.pos {
		return fmt.Errorf("read audit log: %w", &ChainError{Seq: x.c.n,
			Reason: fmt.Sprintf("the log is %d bytes long, shorter than the %d bytes read before: it was truncated or put back from an older copy", size, x.pos)})
	}
	if s.f != nil && size > x.pos {
		n, err := walkFrom(ctx, io.NewSectionReader(s.f, x.pos, size-x.pos), size-x.pos, x.c, visit)
		x.pos += n
		x.cpRead += n
		if err != nil && !errors.Is(err, ErrIncompleteLine) {
			return fmt.Errorf("read audit log: %w", err)
		}
	}
	if a := s.anchor; a != nil {
		if err := x.checkAnchor(a.Seq); err != nil {
			return fmt.Errorf("read audit log: %w", err)
		}
	}
	return nil
}

// readSaves implements savesSource: the batches after the one holding
// the last record read, up to upto.
func (s *Shared) readSaves(ctx context.Context, x *Saves, upto uint64, visit func(*rawRecord)) error {
	if upto == inMemory {
		for {
			first := x.c.n + 1
			data, ok := s.cached(first)
			if !ok {
				return nil
			}
			if err := s.checkBatch(x.c, first, data, visit); err != nil {
				return fmt.Errorf("read audit chain: %w", err)
			}
			x.batch = first
			x.cpRead += int64(len(data))
		}
	}
	h, _, err := s.readHead(ctx)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	// Scan, the full read, reads every batch from the backend.
	fromMemory := upto != toEnd
	switch {
	case h == nil && upto == toHead:
		upto = toEnd // an empty chain, or a deleted head: see below
	case h != nil:
		// At least to the head, which is checked against what was read.
		upto = max(upto, h.Seq)
	}
	checked := false
	for x.c.n < upto {
		if err := ctx.Err(); err != nil {
			return err
		}
		first := x.c.n + 1
		var data []byte
		stored := false
		if fromMemory {
			data, stored = s.cached(first)
		}
		if !stored {
			if !checked && x.c.n > 0 && x.batch > 0 {
				// The batch holding the last record read must still be
				// there: a chain put back from an older copy lost it.
				if _, _, err := s.b.Get(ctx, batchKey(x.batch)); err != nil {
					return fmt.Errorf("read audit chain: %w", &ChainError{Seq: x.batch,
						Reason: fmt.Sprintf("%s, read before, cannot be read (%v): records were deleted", batchKey(x.batch), err)})
				}
				checked = true
			}
			data, _, err = s.b.Get(ctx, batchKey(first))
			if errors.Is(err, ErrNotExist) {
				break
			}
			if err != nil {
				return fmt.Errorf("read audit chain: %w", err)
			}
		}
		if err := s.checkBatch(x.c, first, data, visit); err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		if !stored {
			s.remember(first, data)
		}
		x.batch = first
		x.cpRead += int64(len(data))
	}
	if h != nil {
		if err := x.checkAnchor(h.Seq); err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
	} else if x.c.n > 0 || x.anchor > 0 {
		return fmt.Errorf("read audit chain: %w", &ChainError{Reason: "the chain head is missing: it was deleted"})
	}
	return nil
}

// checkAnchor checks the seq an anchor or head names against the records
// read and the anchors seen before.
func (x *Saves) checkAnchor(seq uint64) error {
	switch {
	case seq > x.c.n:
		return &ChainError{Seq: seq, Reason: fmt.Sprintf("the chain holds %d records but its anchor or head records %d: records were deleted from the end", x.c.n, seq)}
	case seq < x.anchor:
		return &ChainError{Seq: seq, Reason: fmt.Sprintf("the anchor or head moved back from seq %d to %d: an older one was put back", x.anchor, seq)}
	}
	x.anchor = seq
	return nil
}
