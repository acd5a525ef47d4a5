package audit

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped by [*ChainError].
var (
	// ErrChainBroken means the log or its anchor is not what rotor wrote:
	// records were modified, forged, deleted, reordered or inserted, lines
	// do not parse, the tail was truncated, the log was deleted or the
	// anchor was tampered with.
	ErrChainBroken = errors.New("audit log integrity check failed")
	// ErrIncompleteLine means the log ends with a line that has no
	// newline, which is what a write interrupted by a crash or power loss
	// leaves behind. The next [Log.Append] discards such a line and records
	// that it did.
	ErrIncompleteLine = errors.New("audit log ends with an incomplete line")
)

// ChainError says where and how the audit log or its anchor failed a check.
// It wraps [ErrChainBroken], and Err when set.
type ChainError struct {
	// Line is the 1-based line of the log where the chain broke, or 0 when
	// the line number is not known (checks that read the log backwards) or
	// the problem is not at a line (the anchor, a truncated tail).
	Line int
	// Seq is the sequence number of the record concerned: the one expected
	// at Line, or the one the anchor names. It is 0 when not known.
	Seq uint64
	// Reason says what is wrong, for humans.
	Reason string
	// Err is a more specific cause, such as ErrIncompleteLine or the
	// parser's error; it may be nil.
	Err error
}

// Error describes where the chain broke and why.
func (e *ChainError) Error() string {
	msg := "audit chain broken"
	switch {
	case e.Line > 0 && e.Seq > 0:
		msg += fmt.Sprintf(" at line %d (seq %d)", e.Line, e.Seq)
	case e.Line > 0:
		msg += fmt.Sprintf(" at line %d", e.Line)
	case e.Seq > 0:
		msg += fmt.Sprintf(" at seq %d", e.Seq)
	}
	msg += ": " + e.Reason
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrChainBroken and, when set, Err.
func (e *ChainError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrChainBroken}
	}
	return []error{ErrChainBroken, e.Err}
}
