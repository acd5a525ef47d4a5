package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
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
// whole chain once, at its first [Saves.Latest], and after that only what
// was appended since it last looked, checking every record and link as
// Verify does: a load costs the records appended since the last one, not
// the length of the chain. It remembers one [Save] per secret.
//
// Saves does not read records it checked before again, so a change to an
// old record is left to Verify; but a chain that shrank or whose head
// went back since Saves last looked (a log or chain put back from an
// older copy) is reported as a [*ChainError], as is a record that does
// not continue the ones read before.
//
// A Saves is safe for concurrent use.
type Saves struct {
	src savesSource

	mu     sync.Mutex
	c      *checker // the chain checked so far; nil before the first read
	pos    int64    // the log: bytes of complete lines read so far
	batch  uint64   // the shared chain: the batch holding the last record read
	anchor uint64   // the highest anchor or head seen
	latest map[string]Save
	want   map[uint64]string // Scan: the seqs whose hashes it returns
	// lastImport is the seq of the last ActionImport record read.
	lastImport uint64
}

// savesSource reads the records a [Saves] has not read yet.
type savesSource interface {
	readSaves(ctx context.Context, x *Saves, visit func(*rawRecord)) error
}

// Saves returns a [Saves] following l.
func (l *Log) Saves() *Saves { return &Saves{src: l} }

// Saves returns a [Saves] following s.
func (s *Shared) Saves() *Saves { return &Saves{src: s} }

// Latest reads what was appended to the chain since the last call and
// returns the chain's head and the last save of secret it records (ok is
// false when it records none).
func (x *Saves) Latest(ctx context.Context, secret string) (head ChainHead, last Save, ok bool, err error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if err := x.update(ctx); err != nil {
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
	if err := x.update(ctx); err != nil {
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
func (x *Saves) Scan(ctx context.Context, want []uint64) (ScanResult, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.c, x.want, x.lastImport = nil, make(map[uint64]string, len(want)), 0
	for _, seq := range want {
		x.want[seq] = ""
	}
	defer func() { x.want = nil }()
	if err := x.update(ctx); err != nil {
		return ScanResult{}, err
	}
	hashes := make(map[uint64]string, len(x.want))
	for seq, h := range x.want {
		if h != "" {
			hashes[seq] = h
		}
	}
	return ScanResult{Head: ChainHead{Seq: x.c.n, Hash: x.c.headHash()}, Saves: maps.Clone(x.latest), Hashes: hashes, LastImport: x.lastImport}, nil
}

func (x *Saves) update(ctx context.Context) error {
	if x.c == nil {
		x.c, x.pos, x.batch, x.latest = newChecker(x.salt()), 0, 0, map[string]Save{}
	}
	err := x.src.readSaves(ctx, x, func(r *rawRecord) {
		if _, ok := x.want[r.seq]; ok {
			x.want[r.seq] = string(r.str[fHash])
		}
		if string(r.str[fAction]) == ActionImport {
			x.lastImport = r.seq
		}
		if !r.v2 {
			return
		}
		// The highest version, not the last record: two savers may
		// record their saves in the other order than they made them.
		name := string(r.str[fSecret])
		if cur, ok := x.latest[name]; !ok || r.storeVersion >= cur.Version {
			x.latest[name] = Save{Seq: r.seq, Version: r.storeVersion, Digest: string(r.str[fStateDigest])}
		}
	})
	if err != nil {
		// Start again from the first record next time: what was read
		// may be part of a chain that is being repaired or was replaced.
		x.c, x.latest = nil, nil
		return err
	}
	return nil
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

// readSaves implements savesSource: the lines after x.pos.
func (l *Log) readSaves(ctx context.Context, x *Saves, visit func(*rawRecord)) error {
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
// the last record read.
func (s *Shared) readSaves(ctx context.Context, x *Saves, visit func(*rawRecord)) error {
	h, _, err := s.readHead(ctx)
	if err != nil {
		return fmt.Errorf("read audit chain: %w", err)
	}
	if x.c.n > 0 && x.batch > 0 {
		// The batch holding the last record read must still be there:
		// a chain put back from an older copy lost it.
		if _, _, err := s.b.Get(ctx, batchKey(x.batch)); err != nil {
			return fmt.Errorf("read audit chain: %w", &ChainError{Seq: x.batch,
				Reason: fmt.Sprintf("%s, read before, cannot be read (%v): records were deleted", batchKey(x.batch), err)})
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		first := x.c.n + 1
		data, _, err := s.b.Get(ctx, batchKey(first))
		if errors.Is(err, ErrNotExist) {
			break
		}
		if err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		if err := s.checkBatch(x.c, first, data, visit); err != nil {
			return fmt.Errorf("read audit chain: %w", err)
		}
		x.batch = first
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
