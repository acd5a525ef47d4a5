package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
)

// Verifier verifies a [Shared] chain again and again, as a daemon does
// every few minutes, at the cost of what was appended since it last
// looked rather than of the whole chain.
//
// Its first Check, the first after a failed one, and every [Verifier.Full]
// read and check the whole chain as [Shared.Verify] does. Every other
// Check starts from the last record verified (kept in memory: its seq,
// hash and batch) and checks:
//
//   - every record appended since: its hash, its seq and its link to the
//     record before, back to the last one verified;
//   - the head: its MAC; that it never moves back; that the record it
//     names is stored and has the hash it carries (records/<seq> cut off
//     the end of the chain, or a head put back from an older copy, fail
//     here);
//   - the batch holding the last record verified: still stored, byte for
//     byte as it was verified, so that a truncated tail is found even when
//     nothing was appended since.
//
// It does not read the older batches again: a change to a record that was
// already verified is found by the next full verification (a Verifier's
// first Check, [Verifier.Full], [Shared.Verify], `rotor audit verify`),
// not by an incremental one. A Check costs two reads plus one per new
// batch, whatever the length of the chain.
//
// A Verifier is safe for concurrent use; checks are serialised.
type Verifier struct {
	s  *Shared
	mu sync.Mutex
	cp *checkpoint // where the last check ended; nil: the next is full
}

// checkpoint is how far a [Verifier] has verified the chain.
type checkpoint struct {
	end    position // the last record verified and its batch
	endSum [sha256.Size]byte
	head   position // the head last seen (seq and hash)
	headed bool     // whether there was a head
	// tail holds the hashes of the records after head.seq, up to end.seq,
	// so that a head catching up with records verified earlier can be
	// checked without reading them again. At most maxTail are kept;
	// forgot says some were not.
	tail   []seqHash
	forgot bool
}

type seqHash struct {
	seq  uint64
	hash string
}

// maxTail bounds the records a checkpoint remembers beyond the head. The
// head lags the chain only while a writer is stopped between its batch
// and the head, so this is plenty; a head that lands on a record that was
// not remembered costs a full verification.
const maxTail = 10_000

func (cp *checkpoint) remember(r *rawRecord) {
	if len(cp.tail) >= maxTail {
		cp.forgot = true
		return
	}
	cp.tail = append(cp.tail, seqHash{seq: r.seq, hash: string(r.str[fHash])})
}

// errForgotten means an incremental check needs a hash it did not keep.
var errForgotten = errors.New("the head names a record the verifier did not keep")

// NewVerifier returns a [Verifier] of s whose first Check verifies the
// whole chain.
func (s *Shared) NewVerifier() *Verifier { return &Verifier{s: s} }

// Check verifies the chain: the records appended since the last Check and
// the head, or the whole chain when there was no successful Check before
// (see [Verifier]). Problems are reported as by [Shared.Verify]: a
// *ChainError wrapping [ErrChainBroken].
func (v *Verifier) Check(ctx context.Context) (Report, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cp == nil {
		return v.full(ctx)
	}
	rep, cp, err := v.s.since(ctx, v.cp)
	if errors.Is(err, errForgotten) {
		return v.full(ctx)
	}
	if err != nil {
		v.cp = nil
		return Report{}, fmt.Errorf("verify audit chain: %w", err)
	}
	v.cp = &cp
	return rep, nil
}

// Full verifies the whole chain, as [Shared.Verify] does, and makes its
// end the starting point of the next Check.
func (v *Verifier) Full(ctx context.Context) (Report, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.full(ctx)
}

func (v *Verifier) full(ctx context.Context) (Report, error) {
	v.cp = nil
	rep, cp, err := v.s.scanFrom(ctx, nil)
	if err != nil {
		return Report{}, fmt.Errorf("verify audit chain: %w", err)
	}
	v.cp = &cp
	return rep, nil
}

// since checks the chain from cp on (see [Verifier]) and returns where it
// now ends.
func (s *Shared) since(ctx context.Context, cp *checkpoint) (Report, checkpoint, error) {
	fail := func(err error) (Report, checkpoint, error) { return Report{}, checkpoint{}, err }
	h, _, err := s.readHead(ctx)
	if err != nil {
		return fail(err)
	}
	switch {
	case h == nil && cp.headed:
		return fail(&ChainError{Reason: "the chain head is missing: it was deleted"})
	case h != nil && cp.headed && h.Seq < cp.head.seq:
		return fail(&ChainError{Seq: h.Seq, Reason: fmt.Sprintf("the head moved back from seq %d to %d: an older head was put back", cp.head.seq, h.Seq)})
	case h != nil && cp.headed && h.Seq == cp.head.seq && !hashEqual(h.Hash, cp.head.hash):
		return fail(&ChainError{Seq: h.Seq, Reason: "the head names the record it named before with another hash: the chain was rewritten"})
	}
	if cp.end.seq > 0 {
		key := batchKey(cp.end.batch)
		data, _, err := s.b.Get(ctx, key)
		if errors.Is(err, ErrNotExist) {
			return fail(&ChainError{Seq: cp.end.batch, Reason: fmt.Sprintf("%s, verified before, is gone: records were deleted from the end", key)})
		}
		if err != nil {
			return fail(err)
		}
		if sha256.Sum256(data) != cp.endSum {
			return fail(&ChainError{Seq: cp.end.batch, Reason: fmt.Sprintf("%s changed since it was verified: it was modified", key)})
		}
	}

	next := *cp
	next.tail = slices.Clone(cp.tail)
	c := newChecker(s.salt)
	c.n = cp.end.seq
	copy(c.head[:], cp.end.hash)
	var anchored string
	for {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		first := c.n + 1
		data, _, err := s.b.Get(ctx, batchKey(first))
		if errors.Is(err, ErrNotExist) {
			break
		}
		if err != nil {
			return fail(err)
		}
		err = s.checkBatch(c, first, data, func(r *rawRecord) {
			if h != nil && r.seq == h.Seq {
				anchored = string(r.str[fHash])
			}
			if h == nil || r.seq > h.Seq {
				next.remember(r)
			}
		})
		if err != nil {
			return fail(err)
		}
		next.end = position{seq: c.n, hash: c.headHash(), batch: first}
		next.endSum = sha256.Sum256(data)
	}

	n := c.n
	if h == nil {
		if n > 0 {
			return fail(&ChainError{Reason: fmt.Sprintf("the chain holds %d records but its head is missing: it was deleted", n)})
		}
		return Report{Head: GenesisHash}, next, nil
	}
	if h.Seq > n {
		return fail(&ChainError{Seq: h.Seq, Reason: fmt.Sprintf("the chain holds %d records but the head records %d: records were deleted from the end", n, h.Seq)})
	}
	var want string
	switch {
	case h.Seq == 0:
		want = GenesisHash
	case h.Seq > cp.end.seq:
		want = anchored
	case cp.headed && h.Seq == cp.head.seq:
		want = cp.head.hash
	case h.Seq == cp.end.seq:
		want = cp.end.hash
	default:
		i := slices.IndexFunc(cp.tail, func(e seqHash) bool { return e.seq == h.Seq })
		if i < 0 {
			if cp.forgot {
				return fail(errForgotten)
			}
			return fail(&ChainError{Seq: h.Seq, Reason: "the head names a record verified before it was headed, but not among those found then"})
		}
		want = cp.tail[i].hash
	}
	if !hashEqual(want, h.Hash) {
		return fail(&ChainError{Seq: h.Seq, Reason: "the record does not match the head: the chain was rewritten"})
	}
	next.head = position{seq: h.Seq, hash: h.Hash}
	next.headed = true
	next.tail = slices.DeleteFunc(next.tail, func(e seqHash) bool { return e.seq <= h.Seq })
	if h.Seq >= next.end.seq {
		next.forgot = false
	}
	return Report{Records: n, Head: c.headHash(), Anchored: h.Seq}, next, nil
}
