package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
)

// sectionMin is the least log size that Verify splits into sections: below
// it, starting goroutines costs more than it saves.
const sectionMin = 4 << 20

// A record's hash covers the record and the prev_hash it carries, not the
// hash computed for the record before. So every record can be decoded and
// its hash checked on its own; only the links (seq, prev_hash, timestamp
// never going back) join neighbours. walkSections uses that to check a
// log on several cores: it cuts the log at line boundaries into sections,
// checks each section's records and inner links in parallel, then checks
// the links across the cuts, in order. The outcome is exactly walk's: the
// same records, head and first problem, with the same line and seq.

// section is what checking one section found.
type section struct {
	lines int // complete lines checked (each one good record)
	// The first record's claimed place in the chain, set when it decoded
	// and its hash matched.
	first     bool
	firstSeq  uint64
	firstPrev []byte
	firstTS   time.Time
	// The last good record.
	lastSeq  uint64
	lastHash [hashHexLen]byte
	lastTS   time.Time
	// anchored is the hash of the record whose seq the caller asked for,
	// if the section holds it.
	anchored string
	// err is the first problem in the section. Its Line is relative to
	// the section; errFirst says it is at the first line, whose seq only
	// the sections before can tell.
	err      error
	errFirst bool
}

// walkSections checks the first size bytes of r in k sections at once
// and returns what walk would: the number of records, the head hash and
// the first problem. anchorSeq names a record whose hash it returns too
// (0: none).
func walkSections(ctx context.Context, r io.ReaderAt, size int64, k int, salt []byte, anchorSeq uint64) (n uint64, headHash, anchored string, err error) {
	starts, err := cutLines(r, size, k)
	if err != nil {
		return 0, "", "", err
	}
	secs := make([]section, len(starts))
	var wg sync.WaitGroup
	for i := range starts {
		end := size
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		wg.Go(func() {
			secs[i] = checkSection(ctx, io.NewSectionReader(r, starts[i], end-starts[i]), end-starts[i], salt, i > 0, anchorSeq)
		})
	}
	wg.Wait()

	head := []byte(GenesisHash)
	var last time.Time
	line := 0 // complete lines before the current section
	for i := range secs {
		s := &secs[i]
		if s.first && i > 0 {
			// The link across the cut, checked as checker.next checks
			// every other link, in the same order.
			var reason string
			switch {
			case s.firstSeq != n+1:
				reason = fmt.Sprintf("found seq %d: records were deleted, inserted or reordered", s.firstSeq)
			case !bytes.Equal(s.firstPrev, head):
				reason = "prev_hash is not the hash of the record before: records were deleted, inserted or reordered"
			case s.firstTS.Before(last):
				reason = "the timestamp is earlier than the record before's: time went backwards"
			}
			if reason != "" {
				return 0, "", "", &ChainError{Line: line + 1, Seq: n + 1, Reason: reason}
			}
		}
		if s.anchored != "" {
			anchored = s.anchored
		}
		if s.err != nil {
			var cerr *ChainError
			if errors.As(s.err, &cerr) {
				cerr.Line += line
				if s.errFirst {
					cerr.Seq = n + 1
				}
			}
			if !errors.Is(s.err, ErrIncompleteLine) {
				return 0, "", "", s.err // as walk: nothing counts past a problem
			}
			if s.lines > 0 {
				n = s.lastSeq
				head = s.lastHash[:]
			}
			return n, string(head), anchored, s.err
		}
		if s.lines > 0 {
			n = s.lastSeq
			head = s.lastHash[:]
			last = s.lastTS
		}
		line += s.lines
	}
	return n, string(head), anchored, nil
}

// checkSection checks one section's records, size bytes read from r, and
// the links between them.
// adopt says the section does not start the log: its first record's seq,
// prev_hash and timestamp are taken as claimed, for walkSections to check.
func checkSection(ctx context.Context, r io.Reader, size int64, salt []byte, adopt bool, anchorSeq uint64) section {
	var s section
	c := newChecker(salt)
	c.adopt = adopt
	visit := func(rec *rawRecord) {
		if !s.first {
			s.first = true
			s.firstSeq = rec.seq
			s.firstPrev = bytes.Clone(rec.str[fPrevHash])
			s.firstTS = rec.ts
		}
		if anchorSeq != 0 && rec.seq == anchorSeq {
			s.anchored = string(rec.str[fHash])
		}
		s.lines++
	}
	_, s.err = walkFrom(ctx, r, size, c, visit)
	if s.lines > 0 {
		s.lastSeq = c.n
		s.lastHash = c.head
		s.lastTS = c.last
	}
	if s.err != nil && s.lines == 0 {
		s.errFirst = true
	}
	return s
}

// cutLines returns the offsets at which up to k sections of the first
// size bytes of r start: the first at 0, each other just after a newline,
// so that every section but the last ends with a complete line. Sections
// may be fewer than k when lines are long or the log is short.
func cutLines(r io.ReaderAt, size int64, k int) ([]int64, error) {
	starts := []int64{0}
	buf := make([]byte, maxLineSize)
	for i := 1; i < k; i++ {
		at := max(size*int64(i)/int64(k), starts[len(starts)-1])
		m, err := r.ReadAt(buf[:min(int64(len(buf)), size-at)], at)
		if err != nil && err != io.EOF {
			return nil, err
		}
		nl := bytes.IndexByte(buf[:m], '\n')
		if nl < 0 {
			// No newline within a line's length: leave the rest to the
			// section before, whose walk reports the long line.
			break
		}
		if next := at + int64(nl) + 1; next < size && next > starts[len(starts)-1] {
			starts = append(starts, next)
		}
	}
	return starts, nil
}

// sectionsFor is how many sections Verify checks a log of size bytes in.
func sectionsFor(size int64) int {
	if size < sectionMin {
		return 1
	}
	return runtime.GOMAXPROCS(0)
}
