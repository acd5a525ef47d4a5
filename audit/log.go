package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/rotor-dev/rotor/internal/atomicfile"
)

// ActionRecover is the action of the record [Log.Append] writes, as
// [InitiatorSystem], when it discards an incomplete last line before
// appending.
const ActionRecover = "audit.recover"

// ActionImport is the action of the record `rotor audit import` appends to
// a shared chain after the records of a local log, naming that log's last
// seq and hash.
const ActionImport = "audit.import"

// MinSaltSize is the shortest salt [Open] accepts. [LoadOrCreateSalt]
// makes salts of [SaltSize] bytes.
const MinSaltSize = 16

// lockRetryDelay is how often a waiting Append polls the file lock. Polling
// is what makes the wait cancellable.
const lockRetryDelay = 2 * time.Millisecond

// Log is an open audit log. Its methods are safe for concurrent use by
// several goroutines, and several processes may use the same files at once:
// every write happens under an exclusive lock on the file <log>.lock, and
// concurrent appends are committed together ([Log.Append]). A Log holds no
// open file between calls and needs no closing.
type Log struct {
	path       string
	anchorPath string
	salt       []byte
	now        func() time.Time

	// sem serialises the goroutines of this process; lock serialises
	// processes. Both are needed: an flock is per open file on some
	// systems and per process on others.
	sem  chan struct{}
	lock *flock.Flock
	// anchorSynced is when this Log last fsynced the anchor; guarded by
	// sem.
	anchorSynced time.Time

	// mu guards the group commit's queue of Appends and whether one of
	// them leads; see commit.go.
	mu      sync.Mutex
	queue   []*pending
	leading bool

	// checked remembers the last anchor and the last log line this Log
	// checked or wrote, so that a commit does not parse and hash them
	// again when the files still hold exactly those bytes; see memo.
	checked memo
}

// memo remembers the results of two pure checks by the exact bytes they
// were made on: the anchor file's content (parsed, MAC checked) and one
// log line (parsed, hash checked). A file another process changed holds
// other bytes and is checked again; the same bytes always give the same
// result, so a stale entry costs a check, never a wrong answer.
type memo struct {
	mu         sync.Mutex
	anchorData []byte
	anchor     anchor
	line       []byte
	rec        Record
}

// checkedAnchor returns the anchor parsed from data when data is what was
// checked last.
func (m *memo) checkedAnchor(data []byte) (*anchor, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.anchorData == nil || !bytes.Equal(m.anchorData, data) {
		return nil, false
	}
	a := m.anchor
	return &a, true
}

func (m *memo) setAnchor(data []byte, a anchor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.anchorData, m.anchor = bytes.Clone(data), a
}

// checkedLine returns the record parsed from line, whose hash was found
// right, when line is the one checked last.
func (m *memo) checkedLine(line []byte) (Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.line == nil || !bytes.Equal(m.line, line) {
		return Record{}, false
	}
	return m.rec, true
}

// setLine remembers that line, without its newline, holds r and that r's
// hash is right.
func (m *memo) setLine(line []byte, r Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.line, m.rec = bytes.Clone(line), r
}

// Option configures [Open] and [NewShared].
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock makes the chain take record timestamps from now instead of
// time.Now. Tests use it.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

func applyOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, f := range opts {
		f(&o)
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o
}

// Report describes the log [Log.Verify] checked.
type Report struct {
	// Records is the number of records in the log.
	Records uint64
	// Head is the hash of the last record, GenesisHash for an empty log.
	Head string
	// Anchored is the seq recorded in the anchor. It is below Records when
	// a process stopped between writing a record and updating the anchor;
	// the next Append brings the anchor up to date.
	Anchored uint64
}

// Open opens the audit log at path, creating it (mode 0600, parent
// directories 0700) if it does not exist. The chain head is kept in the
// separate file anchorPath, which should live away from the log so that
// whoever can truncate or delete the log cannot also reach the anchor. salt
// keys the hash chain and the anchor; it is the deployment's secret salt
// from [LoadSalt], and must be the same every time a given log is opened.
func Open(path, anchorPath string, salt []byte, opts ...Option) (*Log, error) {
	if path == "" || anchorPath == "" {
		return nil, errors.New("open audit log: log and anchor paths must be set")
	}
	absLog, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	absAnchor, err := filepath.Abs(anchorPath)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if absLog == absAnchor || absLog+".lock" == absAnchor {
		return nil, fmt.Errorf("open audit log: anchor %s must be a separate file from the log %s", anchorPath, path)
	}
	if len(salt) < MinSaltSize {
		return nil, fmt.Errorf("open audit log: salt is %d bytes, want at least %d", len(salt), MinSaltSize)
	}
	l := &Log{
		path:       absLog,
		anchorPath: absAnchor,
		salt:       bytes.Clone(salt),
		now:        applyOptions(opts).now,
		sem:        make(chan struct{}, 1),
		lock:       flock.New(absLog+".lock", flock.SetPermissions(0o600)),
	}
	for _, dir := range []string{filepath.Dir(absLog), filepath.Dir(absAnchor)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open audit log: %w", err)
		}
	}
	f, err := os.OpenFile(absLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	fi, err := f.Stat()
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open audit log: %s is not a regular file", path)
	}
	if err := atomicfile.SyncDir(filepath.Dir(absLog)); err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	return l, nil
}

// acquire takes the in-process and the cross-process lock, waiting until
// ctx is done.
func (l *Log) acquire(ctx context.Context) (release func(), err error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("lock audit log: %w", ctx.Err())
	}
	ok, err := l.lock.TryLockContext(ctx, lockRetryDelay)
	if err == nil && !ok {
		err = ctx.Err()
	}
	if err != nil {
		<-l.sem
		return nil, fmt.Errorf("lock audit log: %w", err)
	}
	return func() {
		// Unlock closes the lock file, which releases the lock even when
		// the explicit unlock fails; there is nothing left to do on error.
		_ = l.lock.Unlock()
		<-l.sem
	}, nil
}

// head is where Append continues the chain.
type head struct {
	seq  uint64
	hash string
	time time.Time // timestamp of the last record
	end  int64     // offset just past the last complete line
	size int64     // file size; more than end when the last line is incomplete
	// anchorMissing says that the log holds no record and there is no
	// anchor yet.
	anchorMissing bool
}

// head reads the end of the log and checks it against the anchor.
func (l *Log) head(f *os.File) (head, error) {
	fi, err := f.Stat()
	if err != nil {
		return head{}, err
	}
	h := head{hash: GenesisHash, size: fi.Size()}
	h.end, err = completeEnd(f, h.size)
	if errors.Is(err, errLineTooLong) {
		return head{}, &ChainError{Reason: "the log ends with a line longer than any record rotor writes"}
	}
	if err != nil {
		return head{}, err
	}
	a, err := l.readAnchor()
	if err != nil {
		return head{}, err
	}
	if h.end == 0 {
		if a != nil && a.Seq > 0 {
			return head{}, &ChainError{Seq: a.Seq, Reason: fmt.Sprintf("the log holds no records but the anchor records %d: the log was truncated or deleted", a.Seq)}
		}
		h.anchorMissing = a == nil
		return h, nil
	}
	if a == nil {
		return head{}, &ChainError{Reason: fmt.Sprintf("the log holds records but the anchor %s is missing: it was deleted, or the anchor path changed", l.anchorPath)}
	}
	// Walk back from the last record to the one the anchor names: only
	// the last record unless a process stopped before updating the anchor.
	first := true
	err = l.scanBack(f, h.end, func(r Record) (bool, error) {
		if first {
			first = false
			h.seq, h.hash, h.time = r.Seq, r.Hash, r.Timestamp
			if a.Seq > r.Seq {
				return false, &ChainError{Seq: a.Seq, Reason: fmt.Sprintf("the last record is %d but the anchor records %d: the tail of the log was truncated", r.Seq, a.Seq)}
			}
		}
		if r.Seq > a.Seq {
			return true, nil
		}
		if !hashEqual(r.Hash, a.Hash) {
			return false, &ChainError{Seq: a.Seq, Reason: "the record does not match the anchor: the log was rewritten"}
		}
		return false, nil
	})
	if err != nil {
		return head{}, err
	}
	if a.Seq == 0 && a.Hash != GenesisHash {
		return head{}, &ChainError{Reason: "the anchor records no records but a hash other than the genesis hash"}
	}
	return h, nil
}

// snapshot is a consistent view of the log taken under the lock: the log
// only grows, so its first size bytes stay valid after the lock is
// released, and long reads need not hold up writers.
type snapshot struct {
	f         *os.File // nil when the log file does not exist
	size      int64
	anchor    *anchor
	anchorErr error
}

func (l *Log) snapshot(ctx context.Context) (snapshot, error) {
	release, err := l.acquire(ctx)
	if err != nil {
		return snapshot{}, err
	}
	defer release()
	var s snapshot
	s.anchor, s.anchorErr = l.readAnchor()
	f, err := os.Open(l.path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return snapshot{}, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return snapshot{}, err
	}
	s.f, s.size = f, fi.Size()
	return s, nil
}

// Tail returns the last n records of the log, oldest first, or every
// record when n <= 0. It checks the hash of each record it returns and the
// links between them, but not the rest of the log; [Log.Verify] does that.
// An incomplete last line is skipped.
func (l *Log) Tail(ctx context.Context, n int) ([]Record, error) {
	s, err := l.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("tail audit log: %w", err)
	}
	if s.f == nil {
		return nil, fmt.Errorf("tail audit log: log file %s does not exist", l.path)
	}
	defer s.f.Close()
	var recs []Record
	if n <= 0 {
		_, _, err = l.walk(ctx, io.NewSectionReader(s.f, 0, s.size), func(r *rawRecord) { recs = append(recs, r.record()) })
		if err != nil && !errors.Is(err, ErrIncompleteLine) {
			return nil, fmt.Errorf("tail audit log: %w", err)
		}
		return recs, nil
	}
	end, err := completeEnd(s.f, s.size)
	if errors.Is(err, errLineTooLong) {
		return nil, fmt.Errorf("tail audit log: %w", &ChainError{Reason: "the log ends with a line longer than any record rotor writes"})
	}
	if err != nil {
		return nil, fmt.Errorf("tail audit log: %w", err)
	}
	err = l.scanBack(s.f, end, func(r Record) (bool, error) {
		recs = append(recs, r)
		return len(recs) < n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("tail audit log: %w", err)
	}
	slices.Reverse(recs)
	return recs, nil
}

// Verify reads the whole log and checks every record's hash, the sequence
// numbers and the links between records, then checks the anchor: it must
// be intact, must not name more records than the log holds, and its hash
// must be that of the record it names. The first problem found is returned
// as a *ChainError, which wraps [ErrChainBroken]; problems in the log are
// reported before problems with the anchor.
//
// An incomplete last line, left by an interrupted write, is reported as a
// *ChainError that also wraps [ErrIncompleteLine], together with the
// Report of the complete records before it, provided the anchor agrees
// with them.
//
// A log of 4 MiB or more is checked in as many sections as there are
// cores, each read through its own 64 KiB buffer (see walkSections): the
// outcome, first problem included, is the same as one pass's.
func (l *Log) Verify(ctx context.Context) (Report, error) {
	s, err := l.snapshot(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", err)
	}
	if s.f == nil {
		if s.anchor != nil && s.anchor.Seq > 0 {
			return Report{}, fmt.Errorf("verify audit log: %w", &ChainError{Seq: s.anchor.Seq, Reason: fmt.Sprintf("the log file %s is missing but the anchor records %d records: the log was deleted", l.path, s.anchor.Seq)})
		}
		return Report{}, fmt.Errorf("verify audit log: log file %s does not exist", l.path)
	}
	defer s.f.Close()
	a := s.anchor
	var anchorSeq uint64
	if a != nil {
		anchorSeq = a.Seq
	}
	n, headHash, anchored, walkErr := walkSections(ctx, s.f, s.size, sectionsFor(s.size), l.salt, anchorSeq)
	if walkErr != nil && !errors.Is(walkErr, ErrIncompleteLine) {
		return Report{}, fmt.Errorf("verify audit log: %w", walkErr)
	}
	var anchorErr error
	switch {
	case s.anchorErr != nil:
		anchorErr = s.anchorErr
	case a == nil && n > 0:
		anchorErr = &ChainError{Reason: fmt.Sprintf("the log holds %d records but the anchor %s is missing: it was deleted, or the anchor path changed", n, l.anchorPath)}
	case a == nil:
	case a.Seq > n:
		anchorErr = &ChainError{Seq: a.Seq, Reason: fmt.Sprintf("the log holds %d records but the anchor records %d: the tail of the log was truncated or the log was deleted", n, a.Seq)}
	case a.Seq == 0 && a.Hash != GenesisHash:
		anchorErr = &ChainError{Reason: "the anchor records no records but a hash other than the genesis hash"}
	case a.Seq > 0 && !hashEqual(anchored, a.Hash):
		anchorErr = &ChainError{Seq: a.Seq, Reason: "the record does not match the anchor: the log was rewritten"}
	}
	if anchorErr != nil {
		return Report{}, fmt.Errorf("verify audit log: %w", anchorErr)
	}
	rep := Report{Records: n, Head: headHash}
	if a != nil {
		rep.Anchored = a.Seq
	}
	if walkErr != nil {
		return rep, fmt.Errorf("verify audit log: %w", walkErr)
	}
	return rep, nil
}

// walk reads the log from r, checks every record and its link to the one
// before, and calls visit for each good record; the record is valid only
// during the call. It stops at the first problem. A last line without a
// newline is reported, after every complete record was visited, as a
// *ChainError wrapping ErrIncompleteLine. Memory stays flat whatever the
// size of the log: one buffered line and one record at a time.
func (l *Log) walk(ctx context.Context, r io.Reader, visit func(*rawRecord)) (n uint64, headHash string, err error) {
	c := newChecker(l.salt)
	if _, err := walkFrom(ctx, r, 0, c, visit); err != nil {
		var cerr *ChainError
		if errors.As(err, &cerr) && errors.Is(err, ErrIncompleteLine) {
			return c.n, c.headHash(), err
		}
		return 0, "", err
	}
	return c.n, c.headHash(), nil
}

// walkFrom is walk continuing the chain c has checked so far: it reads
// the lines of r as the records after c's, and returns how many bytes of
// r the complete lines it checked take up. size is how many bytes r
// holds, or 0 when that is not known.
func walkFrom(ctx context.Context, r io.Reader, size int64, c *checker, visit func(*rawRecord)) (read int64, err error) {
	// The buffer holds the longest line allowed, or all of r and one byte
	// more when r is known to be shorter (so that a last line without a
	// newline is read to EOF, not taken for an overlong one): an
	// incremental read ([Saves]) is often a few records, and should not
	// allocate for a whole line limit each time.
	bufSize := int64(maxLineSize)
	if size > 0 {
		bufSize = min(size+1, bufSize)
	}
	br := bufio.NewReaderSize(r, int(bufSize))
	for line := 1; ; line++ {
		if line%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return read, err
			}
		}
		data, err := br.ReadSlice('\n')
		switch {
		case err == io.EOF && len(data) == 0:
			return read, nil
		case err == io.EOF:
			return read, &ChainError{Line: line, Seq: c.n + 1, Err: ErrIncompleteLine,
				Reason: "the last line has no newline, as an interrupted write leaves it (the next append discards it)"}
		case errors.Is(err, bufio.ErrBufferFull):
			return read, &ChainError{Line: line, Seq: c.n + 1, Reason: "the line is longer than any record rotor writes"}
		case err != nil:
			return read, err
		}
		rec, cerr := c.next(data)
		if cerr != nil {
			cerr.Line = line
			return read, cerr
		}
		read += int64(len(data))
		if visit != nil {
			visit(rec)
		}
	}
}

// scanBack reads the complete lines ending at end backwards and calls fn
// with each record, newest first, until fn returns false or an error, or
// the start of the log is reached. It checks each record's hash and its
// link to the newer record; the oldest record of the log must start the
// chain.
func (l *Log) scanBack(r io.ReaderAt, end int64, fn func(Record) (bool, error)) error {
	var newer *Record
	for end > 0 {
		line, start, err := lineBefore(r, end)
		if errors.Is(err, errLineTooLong) {
			return &ChainError{Reason: "a line near the end of the log is longer than any record rotor writes"}
		}
		if err != nil {
			return err
		}
		var want uint64
		if newer != nil {
			want = newer.Seq - 1
		}
		rec, err := l.checkLine(line, want)
		if err != nil {
			return err
		}
		if newer != nil && (rec.Seq != want || newer.PrevHash != rec.Hash) {
			return &ChainError{Seq: newer.Seq, Reason: "the record does not follow the one before it: records were deleted, inserted or reordered"}
		}
		if start == 0 && (rec.Seq != 1 || rec.PrevHash != GenesisHash) {
			return &ChainError{Line: 1, Seq: 1, Reason: "the first line does not start the chain: records were deleted from the start"}
		}
		more, err := fn(rec)
		if err != nil || !more {
			return err
		}
		newer, end = &rec, start
	}
	return nil
}

// checkLine parses line, the record scanBack expects to be want (0: any),
// and checks its hash; the last line checked is remembered.
func (l *Log) checkLine(line []byte, want uint64) (Record, error) {
	if rec, ok := l.checked.checkedLine(line); ok {
		return rec, nil
	}
	rec, err := parseRecord(line)
	if err != nil {
		return Record{}, &ChainError{Seq: want, Reason: "a line near the end of the log is not a valid record", Err: err}
	}
	if !hashEqual(rec.Hash, recordHash(l.salt, &rec)) {
		return Record{}, &ChainError{Seq: rec.Seq, Reason: "the hash does not match the record: the record was modified or forged"}
	}
	l.checked.setLine(line, rec)
	return rec, nil
}

// errLineTooLong reports a line longer than maxLineSize.
var errLineTooLong = errors.New("line too long")

// completeEnd returns the offset just past the last newline in the first
// size bytes of r, or 0 when there is none.
func completeEnd(r io.ReaderAt, size int64) (int64, error) {
	i, err := lastNewline(r, max(0, size-maxLineSize), size)
	if err != nil {
		return 0, err
	}
	if i < 0 && size >= maxLineSize {
		return 0, errLineTooLong
	}
	return i + 1, nil
}

// lineBefore returns the line whose newline is at end-1, without the
// newline, and the offset where it starts.
func lineBefore(r io.ReaderAt, end int64) ([]byte, int64, error) {
	i, err := lastNewline(r, max(0, end-1-maxLineSize), end-1)
	if err != nil {
		return nil, 0, err
	}
	start := i + 1
	if end-1-start >= maxLineSize {
		return nil, 0, errLineTooLong
	}
	line := make([]byte, end-1-start)
	if _, err := r.ReadAt(line, start); err != nil {
		return nil, 0, err
	}
	return line, start, nil
}

// lastNewline returns the offset of the last '\n' in [lo, hi) of r, or -1.
func lastNewline(r io.ReaderAt, lo, hi int64) (int64, error) {
	var buf [4096]byte
	for hi > lo {
		n := min(int64(len(buf)), hi-lo)
		chunk := buf[:n]
		if _, err := r.ReadAt(chunk, hi-n); err != nil {
			return -1, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return hi - n + int64(i), nil
		}
		hi -= n
	}
	return -1, nil
}
