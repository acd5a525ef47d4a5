package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Shared is an audit chain kept in a [Backend] that every actor of a
// deployment reaches: CI runs, admins' laptops and daemon replicas append
// to one chain, and anyone with the salt verifies it from anywhere. The
// records and their encoding are the log's (see the package doc); only the
// storage differs:
//
//   - records are stored in batches, each under the key
//     "records/<seq of its first record>", as the lines the log would hold.
//     A batch is created once, with a create-only Put, and never changed:
//     of two writers continuing the chain from the same record, one
//     creates the next batch and the other finds it taken, reads it and
//     continues after it. The chain cannot fork;
//   - the key "head" holds the chain head like the log's anchor: seq and
//     hash of a record, MACed with the salt, plus the key of its batch. It
//     is moved forward with compare-and-swap after every append, and only
//     to records already stored, so it may lag the chain (a writer
//     stopped in between) but never runs ahead of it. The swap names the
//     head's version as this Shared last read or wrote it, so a writer
//     that nobody overtook moves the head without reading it first.
//
// A Shared is safe for concurrent use; appends from one process are
// serialised, appends from several meet at the backend.
type Shared struct {
	b    Backend
	salt []byte
	now  func() time.Time

	mu  sync.Mutex
	end *position // where the chain was last seen to end; nil: unknown

	// seen is what this Shared knows of the backend without reading it.
	seenMu sync.Mutex
	// batches holds the batches it wrote or read lately, by first seq:
	// a batch is created once and never changed, so [Saves] takes them
	// from here instead of reading them back.
	batches map[uint64][]byte
	order   []uint64 // the keys of batches, oldest first
	// headSeq and headV are the head's seq and version as last read or
	// written; headV is NoVersion when unknown.
	headSeq uint64
	headV   Version
	// cpV is the saves checkpoint's version as last read or written.
	cpV Version
}

// keptBatches bounds the batches a [Shared] keeps in memory: enough for
// the appends of many parallel operations between two loads.
const keptBatches = 256

// cached returns the batch stored under first when this Shared keeps it.
func (s *Shared) cached(first uint64) ([]byte, bool) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	data, ok := s.batches[first]
	return data, ok
}

// remember keeps the batch stored under first, as written or read.
func (s *Shared) remember(first uint64, data []byte) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	if s.batches == nil {
		s.batches = map[uint64][]byte{}
	}
	if _, ok := s.batches[first]; ok {
		return
	}
	if len(s.order) == keptBatches {
		delete(s.batches, s.order[0])
		s.order = s.order[1:]
	}
	s.batches[first] = data
	s.order = append(s.order, first)
}

// sawHead records the head's seq and version as read or written (the
// head only moves forward, so the highest seq is the latest);
// NoVersion forgets them.
func (s *Shared) sawHead(seq uint64, v Version) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	switch {
	case v == NoVersion:
		s.headSeq, s.headV = 0, NoVersion
	case s.headV == NoVersion || seq > s.headSeq:
		s.headSeq, s.headV = seq, v
	}
}

// knownHead returns the head's seq and version as last seen.
func (s *Shared) knownHead() (uint64, Version) {
	s.seenMu.Lock()
	defer s.seenMu.Unlock()
	return s.headSeq, s.headV
}

// position is a record of the chain and the batch that holds it.
type position struct {
	seq   uint64
	hash  string
	batch uint64    // key of the batch holding seq; 0 at the genesis
	time  time.Time // timestamp of the record seq
}

var genesis = position{hash: GenesisHash}

const headKey = "head"

func batchKey(first uint64) string { return "records/" + strconv.FormatUint(first, 10) }

// sharedHead is the value under headKey.
type sharedHead struct {
	Seq   uint64 `json:"seq"`
	Hash  string `json:"hash"`
	Batch uint64 `json:"batch"`
	MAC   string `json:"mac"`
}

// NewShared returns the chain kept in b, keyed with the deployment's salt.
func NewShared(b Backend, salt []byte, opts ...Option) (*Shared, error) {
	if b == nil {
		return nil, errors.New("shared audit chain: no backend")
	}
	if len(salt) < MinSaltSize {
		return nil, fmt.Errorf("shared audit chain: salt is %d bytes, want at least %d", len(salt), MinSaltSize)
	}
	return &Shared{b: b, salt: bytes.Clone(salt), now: applyOptions(opts).now}, nil
}

// Append adds e to the chain and returns its record; see [Shared.AppendAll].
func (s *Shared) Append(ctx context.Context, e Event) (Record, error) {
	recs, err := s.AppendAll(ctx, []Event{e})
	if len(recs) == 0 {
		return Record{}, err
	}
	return recs[0], err
}

// AppendAll adds es to the chain, in order and as few batches as fit
// MaxBackendValue (one, for the events of an operation), and returns
// their records once the backend holds them. Events are validated as by
// [Log.Append]; an invalid one fails the call before anything is written.
//
// AppendAll refuses, with an error wrapping [ErrChainBroken], to extend a
// chain whose head or last batches fail their checks. If the records were
// written but the head could not be moved, it returns them with the error;
// the next append moves the head.
func (s *Shared) AppendAll(ctx context.Context, es []Event) ([]Record, error) {
	es = cloneEvents(es)
	for i := range es {
		es[i].sanitize()
		if err := es[i].validate(); err != nil {
			return nil, fmt.Errorf("append audit record: invalid event: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, err := s.locate(ctx)
	if err != nil {
		return nil, fmt.Errorf("append audit record: %w", err)
	}
	var out []Record
	for len(es) > 0 {
		recs, data, err := s.build(pos, es)
		if err != nil {
			return out, fmt.Errorf("append audit record: %w", err)
		}
		first := pos.seq + 1
		_, err = s.b.Put(ctx, batchKey(first), data, NoVersion)
		if errors.Is(err, ErrConflict) {
			// Another writer got there first: continue after it.
			next, aerr := s.advance(ctx, pos)
			if aerr != nil {
				s.end = nil
				return out, fmt.Errorf("append audit record: %w", aerr)
			}
			if next.seq == pos.seq {
				s.end = nil
				return out, fmt.Errorf("append audit record: the backend reports %s taken but holds nothing there", batchKey(first))
			}
			pos = next
			continue
		}
		if err != nil {
			s.end = nil
			return out, fmt.Errorf("append audit record: %w", err)
		}
		s.remember(first, data)
		out = append(out, recs...)
		es = es[len(recs):]
		last := recs[len(recs)-1]
		pos = position{seq: last.Seq, hash: last.Hash, batch: first, time: last.Timestamp}
	}
	s.end = &pos
	if err := s.moveHead(ctx, pos); err != nil {
		return out, fmt.Errorf("append audit record: records up to %d were written but the head was not moved: %w", pos.seq, err)
	}
	return out, nil
}

func cloneEvents(es []Event) []Event { return append([]Event(nil), es...) }

// build encodes the records for as many of es as fit one batch after pos.
func (s *Shared) build(pos position, es []Event) ([]Record, []byte, error) {
	var (
		recs []Record
		data []byte
	)
	prev := pos
	for _, e := range es {
		r := Record{Seq: prev.seq + 1, Timestamp: nextTimestamp(s.now(), prev.time), Event: e, PrevHash: prev.hash}
		r.Hash = recordHash(s.salt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			return nil, nil, err
		}
		if len(line) > maxLineSize {
			return nil, nil, fmt.Errorf("record is %d bytes, more than the limit of %d: shorten the detail", len(line), maxLineSize)
		}
		if _, err := parseRecord(line); err != nil {
			return nil, nil, fmt.Errorf("record would not parse back: %w", err)
		}
		if len(recs) > 0 && len(data)+len(line) > MaxBackendValue {
			break
		}
		recs, data = append(recs, r), append(data, line...)
		prev = position{seq: r.Seq, hash: r.Hash, time: r.Timestamp}
	}
	return recs, data, nil
}

// locate returns where the chain ends: the cached end, or the head checked
// against the record it names and followed to the last batch.
func (s *Shared) locate(ctx context.Context) (position, error) {
	if s.end != nil {
		return *s.end, nil
	}
	h, _, err := s.readHead(ctx)
	if err != nil {
		return position{}, err
	}
	if h == nil {
		if h, err = s.headEmptyChain(ctx); err != nil {
			return position{}, err
		}
	}
	pos := genesis
	if h != nil && h.Seq > 0 {
		if pos, err = s.checkHeadBatch(ctx, h); err != nil {
			return position{}, err
		}
	}
	pos, err = s.advance(ctx, pos)
	if err != nil {
		return position{}, err
	}
	s.end = &pos
	return pos, nil
}

// headEmptyChain is locate's answer to a missing head: it heads the empty
// chain, first thing, so that from the moment the first batch exists every
// writer finds a head. A chain with records and no head was tampered
// with, unless another writer headed it between the two reads, and then
// that head is returned.
func (s *Shared) headEmptyChain(ctx context.Context) (*sharedHead, error) {
	_, _, err := s.b.Get(ctx, batchKey(1))
	if err == nil {
		h, _, err := s.readHead(ctx)
		if err != nil {
			return nil, err
		}
		if h == nil {
			return nil, &ChainError{Reason: "the chain holds records but its head is missing: it was deleted"}
		}
		return h, nil
	}
	if !errors.Is(err, ErrNotExist) {
		return nil, err
	}
	data, err := json.Marshal(sharedHead{Hash: GenesisHash, MAC: anchorMAC(s.salt, 0, GenesisHash)})
	if err != nil {
		return nil, err
	}
	if _, err := s.b.Put(ctx, headKey, data, NoVersion); err != nil && !errors.Is(err, ErrConflict) {
		return nil, err
	}
	return nil, nil
}

// checkHeadBatch reads the batch the head names, checks its records and
// that the head's record is among them, and returns the batch's last
// record.
func (s *Shared) checkHeadBatch(ctx context.Context, h *sharedHead) (position, error) {
	data, _, err := s.b.Get(ctx, batchKey(h.Batch))
	if errors.Is(err, ErrNotExist) {
		return position{}, &ChainError{Seq: h.Seq, Reason: fmt.Sprintf("the head names %s, which does not exist: records were deleted", batchKey(h.Batch))}
	}
	if err != nil {
		return position{}, err
	}
	// The link to the batches before is Verify's business; here the
	// batch is checked from its own first record on.
	c := s.batchChecker(h.Batch, data)
	found := false
	err = s.checkBatch(c, h.Batch, data, func(r *rawRecord) {
		if r.seq == h.Seq {
			found = hashEqual(string(r.str[fHash]), h.Hash)
		}
	})
	if err != nil {
		return position{}, err
	}
	if !found {
		return position{}, &ChainError{Seq: h.Seq, Reason: "the record does not match the head: the chain was rewritten or truncated"}
	}
	return position{seq: c.n, hash: c.headHash(), batch: h.Batch, time: c.last}, nil
}

// batchChecker returns a checker for the batch stored under first, data,
// on its own: it takes the prev_hash of the batch's first record as the
// chain's so far, leaving the link to the batches before unchecked.
func (s *Shared) batchChecker(first uint64, data []byte) *checker {
	c := newChecker(s.salt)
	c.n = first - 1
	if i := bytes.IndexByte(data, '\n'); i > 0 {
		var d decoder
		var r rawRecord
		if err := d.decode(data[:i], &r); err == nil {
			copy(c.head[:], r.str[fPrevHash])
		}
	}
	return c
}

// advance follows the batches stored after pos and returns the last
// record, checking every record on the way.
func (s *Shared) advance(ctx context.Context, pos position) (position, error) {
	for {
		first := pos.seq + 1
		data, _, err := s.b.Get(ctx, batchKey(first))
		if errors.Is(err, ErrNotExist) {
			return pos, nil
		}
		if err != nil {
			return position{}, err
		}
		c := newChecker(s.salt)
		c.n, c.last = pos.seq, pos.time
		copy(c.head[:], pos.hash)
		if err := s.checkBatch(c, first, data, nil); err != nil {
			return position{}, err
		}
		s.remember(first, data)
		pos = position{seq: c.n, hash: c.headHash(), batch: first, time: c.last}
	}
}

// checkBatch checks the records of the batch stored under first with c,
// calling visit for each.
func (s *Shared) checkBatch(c *checker, first uint64, data []byte, visit func(*rawRecord)) error {
	key := batchKey(first)
	if len(data) == 0 {
		return &ChainError{Seq: first, Reason: fmt.Sprintf("%s is empty", key)}
	}
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			return &ChainError{Seq: c.n + 1, Reason: fmt.Sprintf("%s ends without a newline: it was modified", key)}
		}
		r, cerr := c.next(data[:i+1])
		if cerr != nil {
			cerr.Reason = key + ": " + cerr.Reason
			return cerr
		}
		if visit != nil {
			visit(r)
		}
		data = data[i+1:]
	}
	return nil
}

// readHead returns the head and its version, or nil when there is none.
func (s *Shared) readHead(ctx context.Context) (*sharedHead, Version, error) {
	data, v, err := s.b.Get(ctx, headKey)
	if errors.Is(err, ErrNotExist) {
		return nil, NoVersion, nil
	}
	if err != nil {
		return nil, NoVersion, err
	}
	broken := func(what string) error {
		return &ChainError{Reason: fmt.Sprintf("the chain head %s: it was tampered with", what)}
	}
	var h struct {
		Seq   *uint64 `json:"seq"`
		Hash  *string `json:"hash"`
		Batch *uint64 `json:"batch"`
		MAC   *string `json:"mac"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil || dec.More() || h.Seq == nil || h.Hash == nil || h.Batch == nil || h.MAC == nil {
		return nil, NoVersion, broken("does not parse")
	}
	if !hashEqual(*h.MAC, anchorMAC(s.salt, *h.Seq, *h.Hash)) {
		return nil, NoVersion, broken("has a wrong MAC")
	}
	if *h.Seq > 0 && (*h.Batch == 0 || *h.Batch > *h.Seq) {
		return nil, NoVersion, &ChainError{Seq: *h.Seq, Reason: "the chain head names a batch that cannot hold its record"}
	}
	if *h.Seq == 0 && *h.Hash != GenesisHash {
		return nil, NoVersion, &ChainError{Reason: "the chain head records no records but a hash other than the genesis hash"}
	}
	s.sawHead(*h.Seq, v)
	return &sharedHead{Seq: *h.Seq, Hash: *h.Hash, Batch: *h.Batch, MAC: *h.MAC}, v, nil
}

// moveHead moves the head forward to pos, unless it already names pos or
// a later record.
func (s *Shared) moveHead(ctx context.Context, pos position) error {
	data, err := json.Marshal(sharedHead{Seq: pos.seq, Hash: pos.hash, Batch: pos.batch, MAC: anchorMAC(s.salt, pos.seq, pos.hash)})
	if err != nil {
		return err
	}
	put := func(v Version) error {
		nv, err := s.b.Put(ctx, headKey, data, v)
		switch {
		case err == nil:
			s.sawHead(pos.seq, nv)
		case !errors.Is(err, ErrConflict):
			s.sawHead(0, NoVersion) // the write may or may not have landed
		}
		return err
	}
	// The head as this Shared last read or wrote it is most often still
	// the head: move it without reading it first. The compare-and-swap
	// refuses a head somebody else moved meanwhile.
	if seq, v := s.knownHead(); v != NoVersion && seq < pos.seq {
		if err := put(v); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	// Every lost race means another writer moved the head; a backend that
	// reports conflicts without one must not keep us here for ever.
	for range maxHeadRetries {
		h, v, err := s.readHead(ctx)
		if err != nil {
			return err
		}
		if h != nil && h.Seq >= pos.seq {
			return nil
		}
		if err := put(v); !errors.Is(err, ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("the head changed under %d attempts to move it: %w", maxHeadRetries, ErrConflict)
}

// maxHeadRetries bounds the attempts to move the head.
const maxHeadRetries = 64

// Verify reads the whole chain, batch after batch, and checks every
// record's hash, the sequence numbers and the links between records, then
// checks the head as [Log.Verify] checks the anchor: it must be intact,
// must not name more records than the chain holds, and its hash must be
// that of the record it names. The first problem found is returned as a
// *ChainError, which wraps [ErrChainBroken].
func (s *Shared) Verify(ctx context.Context) (Report, error) {
	rep, err := s.scan(ctx, nil)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit chain: %w", err)
	}
	return rep, nil
}

// Tail returns the last n records of the chain, oldest first, or every
// record when n <= 0. It reads and checks the whole chain.
func (s *Shared) Tail(ctx context.Context, n int) ([]Record, error) {
	recs, err := s.Query(ctx, Filter{}, n)
	if err != nil {
		return nil, fmt.Errorf("tail audit chain: %w", err)
	}
	return recs, nil
}

// scan reads and checks the chain from its first record, calls visit for
// each, and checks the head.
func (s *Shared) scan(ctx context.Context, visit func(*rawRecord)) (Report, error) {
	rep, _, err := s.scanFrom(ctx, visit)
	return rep, err
}

// scanFrom is scan, also returning what a [Verifier] needs to check the
// records appended afterwards.
func (s *Shared) scanFrom(ctx context.Context, visit func(*rawRecord)) (Report, checkpoint, error) {
	h, _, err := s.readHead(ctx)
	if err != nil {
		return Report{}, checkpoint{}, err
	}
	c := newChecker(s.salt)
	cp := checkpoint{end: genesis, head: genesis}
	var anchored string
	for {
		if err := ctx.Err(); err != nil {
			return Report{}, checkpoint{}, err
		}
		first := c.n + 1
		data, _, err := s.b.Get(ctx, batchKey(first))
		if errors.Is(err, ErrNotExist) {
			break
		}
		if err != nil {
			return Report{}, checkpoint{}, err
		}
		err = s.checkBatch(c, first, data, func(r *rawRecord) {
			if h != nil && r.seq == h.Seq {
				anchored = string(r.str[fHash])
			}
			if h != nil && r.seq > h.Seq {
				cp.remember(r)
			}
			if visit != nil {
				visit(r)
			}
		})
		if err != nil {
			return Report{}, checkpoint{}, err
		}
		cp.end = position{seq: c.n, hash: c.headHash(), batch: first}
		cp.endSum = sha256.Sum256(data)
	}
	n := c.n
	switch {
	case h == nil && n > 0:
		return Report{}, checkpoint{}, &ChainError{Reason: fmt.Sprintf("the chain holds %d records but its head is missing: it was deleted", n)}
	case h == nil:
		return Report{Head: GenesisHash}, cp, nil
	case h.Seq > n:
		return Report{}, checkpoint{}, &ChainError{Seq: h.Seq, Reason: fmt.Sprintf("the chain holds %d records but the head records %d: records were deleted from the end", n, h.Seq)}
	case h.Seq > 0 && !hashEqual(anchored, h.Hash):
		return Report{}, checkpoint{}, &ChainError{Seq: h.Seq, Reason: "the record does not match the head: the chain was rewritten"}
	}
	cp.head = position{seq: h.Seq, hash: h.Hash}
	cp.headed = true
	return Report{Records: n, Head: c.headHash(), Anchored: h.Seq}, cp, nil
}
