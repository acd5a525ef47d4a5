package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Filter selects records for [Log.Query] and [Shared.Query]; a zero field
// matches every record.
type Filter struct {
	// Secret is the secret a record must concern, exactly.
	Secret string
	// Since is the earliest timestamp a record may have.
	Since time.Time
	// Initiator is a prefix the record's initiator must start with, e.g.
	// "ci:github:" or "user:".
	Initiator string
}

// Match reports whether r passes f.
func (f Filter) Match(r Record) bool {
	return (f.Secret == "" || r.Secret == f.Secret) &&
		(f.Since.IsZero() || !r.Timestamp.Before(f.Since)) &&
		(f.Initiator == "" || len(r.Initiator) >= len(f.Initiator) && r.Initiator[:len(f.Initiator)] == f.Initiator)
}

// matchRaw is Match on a record not yet converted, so that the records a
// query skips cost no allocation.
func (f *Filter) matchRaw(r *rawRecord) bool {
	if f.Secret != "" && string(r.str[fSecret]) != f.Secret {
		return false
	}
	if f.Initiator != "" && !bytes.HasPrefix(r.str[fInitiator], []byte(f.Initiator)) {
		return false
	}
	if !f.Since.IsZero() {
		ts, _ := parseTimestamp(r.str[fTimestamp])
		if ts.Before(f.Since) {
			return false
		}
	}
	return true
}

// matches collects the last n records that pass a filter (every one when
// n <= 0), holding at most 2n at a time.
type matches struct {
	f    Filter
	n    int
	recs []Record
}

func (m *matches) visit(r *rawRecord) {
	if !m.f.matchRaw(r) {
		return
	}
	m.recs = append(m.recs, r.record())
	if m.n > 0 && len(m.recs) >= 2*m.n {
		m.recs = append(m.recs[:0], m.recs[len(m.recs)-m.n:]...)
	}
}

func (m *matches) result() []Record {
	if m.n > 0 && len(m.recs) > m.n {
		return m.recs[len(m.recs)-m.n:]
	}
	return m.recs
}

// Query returns the last n records that pass f, oldest first, or every
// one when n <= 0. It reads the whole log and checks every record and
// link as it goes, as [Log.Verify] does (but not the anchor); an
// incomplete last line is skipped.
func (l *Log) Query(ctx context.Context, f Filter, n int) ([]Record, error) {
	s, err := l.snapshot(ctx)
	if err != nil {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	if s.f == nil {
		return nil, fmt.Errorf("query audit log: log file %s does not exist", l.path)
	}
	defer s.f.Close()
	m := matches{f: f, n: n}
	_, _, err = l.walk(ctx, io.NewSectionReader(s.f, 0, s.size), m.visit)
	if err != nil && !errors.Is(err, ErrIncompleteLine) {
		return nil, fmt.Errorf("query audit log: %w", err)
	}
	return m.result(), nil
}

// Query returns the last n records of the chain that pass f, oldest first,
// or every one when n <= 0. It reads and checks the whole chain and its
// head.
func (s *Shared) Query(ctx context.Context, f Filter, n int) ([]Record, error) {
	m := matches{f: f, n: n}
	if _, err := s.scan(ctx, m.visit); err != nil {
		return nil, fmt.Errorf("query audit chain: %w", err)
	}
	return m.result(), nil
}

// ParseSince reads the start of a query window: a duration back from now
// in days, hours, minutes or seconds ("90d", "12h", "1h30m"), or an RFC
// 3339 time.
func ParseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*366 {
			return time.Time{}, fmt.Errorf("%q is neither a duration (90d, 12h) nor an RFC 3339 time", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d < 0 {
			return time.Time{}, fmt.Errorf("%q is neither a duration (90d, 12h) nor an RFC 3339 time", s)
		}
	}
	return now.Add(-d), nil
}
