package rotation

import (
	"strings"
	"time"
)

// AuditDetail returns the detail an audit record of e carries: e.Detail
// prefixed with the operation, "[op ID] …", and for a terminal record with
// how it ended, "[op ID ended: OUTCOME] …". An event outside an operation
// keeps its detail as it is. [ParseAuditDetail] reverses it.
func (e Event) AuditDetail() string {
	if e.Op == "" {
		return e.Detail
	}
	tag := "[op " + e.Op
	if e.End != "" {
		tag += " ended: " + string(e.End)
	}
	tag += "]"
	if e.Detail == "" {
		return tag
	}
	return tag + " " + e.Detail
}

// ParseAuditDetail splits an audit record's detail written by
// [Event.AuditDetail] into the operation id, the outcome when the record is
// the operation's last, and the rest. ok is false for a detail without an
// operation (records of older rotors, refusals, denials).
func ParseAuditDetail(detail string) (op string, end Outcome, rest string, ok bool) {
	tag, rest, found := strings.Cut(detail, "]")
	tag, isOp := strings.CutPrefix(tag, "[op ")
	if !found || !isOp {
		return "", "", detail, false
	}
	op, outcome, ended := strings.Cut(tag, " ended: ")
	if op == "" || strings.ContainsAny(op, " [") {
		return "", "", detail, false
	}
	if ended {
		switch o := Outcome(outcome); o {
		case EndSucceeded, EndFailed, EndAborted, EndRecovered:
			end = o
		default:
			return "", "", detail, false
		}
	}
	return op, end, strings.TrimPrefix(rest, " "), true
}

// AuditRecord is what [OpenOperations] needs of one audit record; callers
// fill it from whatever log they read (package audit's Record has these
// fields).
type AuditRecord struct {
	Seq       uint64
	Timestamp time.Time
	Initiator string
	Action    string
	Secret    string
	Status    string
	Detail    string
}

// OpenOperation is an operation the audit log has records of but no
// terminal record: it is still running, was interrupted and not yet
// resumed, or was interrupted and nobody has run rotor on that secret
// since.
type OpenOperation struct {
	ID     string
	Secret string
	// First and Last are the operation's first and last records.
	First, Last AuditRecord
}

// OpenOperations returns, in the order they started, the operations in
// records (in log order) that have no terminal record. Records without an
// operation are ignored. It looks at nothing but the records, so it works
// the same over a local log, a shared chain or an export of either.
func OpenOperations(records []AuditRecord) []OpenOperation {
	type state struct {
		op    OpenOperation
		ended bool
	}
	var order []string
	ops := map[string]*state{}
	for _, r := range records {
		id, end, _, ok := ParseAuditDetail(r.Detail)
		if !ok {
			continue
		}
		st := ops[id]
		if st == nil {
			st = &state{op: OpenOperation{ID: id, Secret: r.Secret, First: r}}
			ops[id] = st
			order = append(order, id)
		}
		st.op.Last = r
		if end != "" {
			st.ended = true
		}
	}
	var open []OpenOperation
	for _, id := range order {
		if st := ops[id]; !st.ended {
			open = append(open, st.op)
		}
	}
	return open
}
