package killtest

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// State is what the invariants are checked over, read after an iteration.
type State struct {
	// Secret is the secret as stored, with values.
	Secret *store.Secret
	// Ledger is what the issuer did.
	Ledger *Ledger
	// Reloaded lists, in order, the key ids the reload hook gave
	// consumers; its last is what consumers use.
	Reloaded []string
	// Open are the operations of the audit log without a terminal record.
	Open []rotation.OpenOperation
	// Settled says a run that was not killed has finished since the last
	// kill: no operation may be in flight and every key must be accounted
	// for.
	Settled bool
	// Foreign are request ids of keys minted at the issuer for something
	// other than rotor's mints (keys an operator created to stage): rotor
	// only answers for them once it saved them.
	Foreign func(requestID string) bool
}

// Check returns every invariant State breaks:
//
//   - current is never empty, and never a key the issuer revoked;
//   - the key consumers were last reloaded with is never revoked at the
//     issuer (its successor's reload has not completed, or it would be
//     the last);
//   - every key the issuer minted for rotor is in a slot (current,
//     previous, next, pending or retired), revoked at the issuer, reported
//     as possibly orphaned (its request id in the secret's orphans), or,
//     while an operation is in flight, the answer to its open mint intent;
//   - once settled: no operation is in flight, in the store or in the
//     audit log.
//
// The audit chain's own integrity is checked by its Verify, not here.
func Check(st State) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	s, led := st.Secret, st.Ledger
	if s.Current == nil {
		bad("current is empty")
	} else if led.Revoked[s.Current.Value] {
		bad("current key %s was revoked at the issuer", s.Current.ID)
	}
	if n := len(st.Reloaded); n > 0 && led.RevokedIDs[st.Reloaded[n-1]] {
		bad("key %s, which consumers were last reloaded with, was revoked at the issuer", st.Reloaded[n-1])
	}
	held := map[string]bool{}
	for _, k := range append([]*store.Key{s.Current, s.Previous, s.Next, s.Pending}, keyPtrs(s.Retired)...) {
		if k != nil {
			held[k.Value] = true
		}
	}
	orphaned := map[string]bool{}
	for _, o := range s.Orphans {
		orphaned[o.RequestID] = true
	}
	intent := ""
	if r := s.Rotation; r != nil && r.Intent != nil && !st.Settled {
		intent = r.Intent.ID
	}
	for _, m := range led.Minted {
		switch {
		case held[m.Value], led.Revoked[m.Value], orphaned[m.RequestID], m.RequestID == intent:
		case st.Foreign != nil && st.Foreign(m.RequestID):
		default:
			bad("key minted for request %s is in no slot, not revoked and not reported as possibly orphaned", m.RequestID)
		}
	}
	if st.Settled {
		if r := s.Rotation; r != nil {
			bad("%s %s still in flight after a run that was not killed (step %q)", r.OpKind(), r.ID, r.Step)
		}
		if len(st.Open) > 0 {
			ids := make([]string, len(st.Open))
			for i, o := range st.Open {
				ids[i] = o.ID + " (" + o.First.Action + ", last " + o.Last.Action + " " + o.Last.Status + ")"
			}
			bad("operations without a terminal record in the audit log: %s", strings.Join(ids, ", "))
		}
	}
	return errs
}

func keyPtrs(ks []store.Key) []*store.Key {
	ps := make([]*store.Key, len(ks))
	for i := range ks {
		ps[i] = &ks[i]
	}
	return slices.Clip(ps)
}
