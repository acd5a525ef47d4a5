package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
)

// Group commit. Appends queue up in the Log; one of the waiting callers,
// the leader, takes the lock, writes every queued record in one write,
// releases the lock, fsyncs the log, brings the anchor up to date and
// answers the whole batch. While a leader fsyncs, the next batch gathers,
// and its leader may already write it: other processes, and the next
// leader of this one, write while an fsync is under way, and the kernel
// lets concurrent fsyncs of one file share a disk flush. An fsync makes
// every byte written to the file before it durable, whoever wrote it, so a
// record is answered only once everything up to it is on disk.

// pending is one Append waiting for its batch. The fields other than the
// channels are guarded by Log.mu until done is closed.
type pending struct {
	es      []Event
	queued  bool          // still in Log.queue: the caller may withdraw it
	promote chan struct{} // receives when the caller is to lead
	done    chan struct{} // closed when recs and err are set
	recs    []Record
	err     error
}

// Append adds e to the log and returns the record written, once it is on
// disk: a record Append returned survives a crash of the process or of
// the machine. It validates e first: Initiator and Action must be set,
// Status must be one of the Status constants and KeyID empty or a key id;
// invalid UTF-8 is replaced with U+FFFD.
//
// Concurrent Appends, from goroutines of this process or from other
// processes, are committed together: one write and one fsync for a batch
// of records. Under the lock, the leader of a batch reads only the end of
// the log and checks that the last record and the anchor agree before it
// writes; after the fsync it updates the anchor.
//
// Append refuses, with an error wrapping [ErrChainBroken], to extend a log
// whose tail or anchor fails those checks: appending would overwrite the
// anchor and with it the evidence. An incomplete last line is not such a
// failure; Append removes it and first appends an [ActionRecover] record
// saying how many bytes it discarded.
//
// If ctx ends while the record waits for the lock, Append returns ctx's
// error and the record is not written. If the record was written but the
// anchor could not be updated, Append returns the record together with
// the error; the record is in the log and the next Append updates the
// anchor.
func (l *Log) Append(ctx context.Context, e Event) (Record, error) {
	recs, err := l.AppendAll(ctx, []Event{e})
	if len(recs) == 0 {
		return Record{}, err
	}
	return recs[0], err
}

// AppendAll adds es to the log as [Log.Append] adds one event: in order,
// with no other record between them, all in the same commit. If one of
// them is invalid or cannot be written, none is.
func (l *Log) AppendAll(ctx context.Context, es []Event) ([]Record, error) {
	es = cloneEvents(es)
	for i := range es {
		es[i].sanitize()
		if err := es[i].validate(); err != nil {
			return nil, fmt.Errorf("append audit record: invalid event: %w", err)
		}
	}
	if len(es) == 0 {
		return nil, nil
	}
	p := &pending{es: es, queued: true, promote: make(chan struct{}, 1), done: make(chan struct{})}
	l.mu.Lock()
	l.queue = append(l.queue, p)
	if !l.leading {
		l.leading = true
		p.promote <- struct{}{}
	}
	l.mu.Unlock()
	for {
		select {
		case <-p.done:
			return p.recs, p.err
		case <-p.promote:
			if err := l.lead(ctx, p); err != nil {
				return nil, fmt.Errorf("append audit record: %w", err)
			}
		case <-ctx.Done():
			l.mu.Lock()
			if p.queued {
				l.withdrawLocked(p)
				l.mu.Unlock()
				return nil, fmt.Errorf("append audit record: %w", ctx.Err())
			}
			l.mu.Unlock()
			// The records are being written: the answer is an fsync away.
			<-p.done
			return p.recs, p.err
		}
	}
}

// withdrawLocked removes p, whose caller gives up, from the queue, and
// passes the lead on if p had been given it.
func (l *Log) withdrawLocked(p *pending) {
	l.removeLocked(p)
	select {
	case <-p.promote:
		l.handOffLocked()
	default:
	}
}

func (l *Log) removeLocked(p *pending) {
	p.queued = false
	l.queue = slices.DeleteFunc(l.queue, func(q *pending) bool { return q == p })
}

// handOffLocked makes the oldest queued Append the next leader, or notes
// that there is none.
func (l *Log) handOffLocked() {
	if len(l.queue) == 0 {
		l.leading = false
		return
	}
	l.queue[0].promote <- struct{}{}
}

// lead commits the queue as p's caller: it waits for the lock with p's
// context, takes every queued Append, p included, writes them, hands the
// lead on and finishes the batch. An error means that p was withdrawn
// before anything was written.
func (l *Log) lead(ctx context.Context, p *pending) error {
	release, err := l.acquire(ctx)
	if err != nil {
		l.mu.Lock()
		l.removeLocked(p)
		l.handOffLocked()
		l.mu.Unlock()
		return err
	}
	l.mu.Lock()
	batch := l.queue
	l.queue = nil
	for _, q := range batch {
		q.queued = false
	}
	l.mu.Unlock()

	c, err := l.write(batch)
	release()
	// The next batch may be written while this one is synced.
	l.mu.Lock()
	l.handOffLocked()
	l.mu.Unlock()
	if err == nil {
		// The batch is written: finish it whatever becomes of p's caller.
		err = c.sync(context.WithoutCancel(ctx))
	}
	for i, q := range batch {
		switch {
		case err != nil && (c == nil || !c.anchorErr):
			q.err = err
		case c.errs[i] != nil:
			q.err = c.errs[i]
		default:
			q.recs, q.err = c.recs[i], err
		}
		close(q.done)
	}
	return nil
}

// commit is a batch written to the log and not yet synced.
type commit struct {
	l    *Log
	f    *os.File
	recs [][]Record // a pending's records, in batch order
	errs []error    // why a pending's records were not written
	last Record     // the last record written; zero when none was
	// anchorErr says that err concerns only the anchor: the records are
	// durable.
	anchorErr bool
}

// write appends a record for every pending of batch under the lock, in one
// write, after a recovery record if the log ends with an incomplete line.
// On failure it cuts the log back, so no partial line is left behind.
func (l *Log) write(batch []*pending) (*commit, error) {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	c := &commit{l: l, f: f}
	fail := func(err error) (*commit, error) {
		f.Close()
		return nil, err
	}
	h, err := l.head(f)
	if err != nil {
		return fail(err)
	}
	if h.anchorMissing {
		// Anchor the empty chain first: from the moment this batch is
		// written, the next writer, which may come before this one has
		// synced, must find an anchor.
		if err := l.writeAnchor(0, GenesisHash); err != nil {
			return fail(err)
		}
	}
	partial := h.size - h.end
	if partial > 0 {
		if err := truncate(f, h.end); err != nil {
			return fail(fmt.Errorf("discard incomplete last line: %w", err))
		}
		h.size = h.end
	}
	var (
		buf        []byte
		lastLine   []byte // the last line added, with its newline
		lastParsed Record // lastLine parsed back
	)
	add := func(e Event) (Record, error) {
		r := Record{Seq: h.seq + 1, Timestamp: nextTimestamp(l.now(), h.time), Event: e, PrevHash: h.hash}
		r.Hash = recordHash(l.salt, &r)
		line, err := encodeRecord(r)
		if err != nil {
			return Record{}, err
		}
		if len(line) > maxLineSize {
			return Record{}, fmt.Errorf("record is %d bytes, more than the limit of %d: shorten the detail", len(line), maxLineSize)
		}
		// Whatever Append writes, Verify must accept (this catches, e.g.,
		// a clock outside the years RFC 3339 can express).
		parsed, err := parseRecord(line)
		if err != nil {
			return Record{}, fmt.Errorf("record would not parse back: %w", err)
		}
		buf = append(buf, line...)
		lastLine, lastParsed = line, parsed
		h.seq, h.hash, h.time = r.Seq, r.Hash, r.Timestamp
		c.last = r
		return r, nil
	}
	if partial > 0 {
		_, err := add(Event{
			Initiator: InitiatorSystem,
			Action:    ActionRecover,
			Status:    StatusSucceeded,
			Detail:    fmt.Sprintf("discarded an incomplete last line of %d bytes, left by an interrupted write", partial),
		})
		if err != nil {
			return fail(err)
		}
	}
	for _, p := range batch {
		// A pending that cannot be written must not fail the others.
		saved, savedLast, n := h, c.last, len(buf)
		var (
			recs []Record
			err  error
		)
		for _, e := range p.es {
			var r Record
			if r, err = add(e); err != nil {
				h, c.last, buf, recs = saved, savedLast, buf[:n], nil
				lastLine = nil
				break
			}
			recs = append(recs, r)
		}
		c.recs, c.errs = append(c.recs, recs), append(c.errs, err)
	}
	if _, err := f.Write(buf); err != nil {
		return fail(errors.Join(fmt.Errorf("write: %w", err), truncate(f, h.end)))
	}
	if lastLine != nil && c.last.Seq == lastParsed.Seq {
		// The next commit reads this line back as the head: it was
		// hashed here, and parsed back above.
		l.checked.setLine(lastLine[:len(lastLine)-1], lastParsed)
	}
	return c, nil
}

// sync makes the batch durable and then moves the anchor to its last
// record, unless another commit already moved it further.
func (c *commit) sync(ctx context.Context) error {
	defer c.f.Close()
	if c.last.Seq == 0 { // nothing was written
		return nil
	}
	if err := c.f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := c.l.advanceAnchor(ctx, c.last.Seq, c.last.Hash); err != nil {
		c.anchorErr = true
		return fmt.Errorf("record %d was written but the anchor was not updated: %w", c.last.Seq, err)
	}
	return nil
}

func truncate(f *os.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return fmt.Errorf("truncate: %w", err)
	}
	return f.Sync()
}
