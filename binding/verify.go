package binding

import (
	"context"
	"errors"
	"fmt"

	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/store"
)

// Verify checks the stored secrets called names against the chain, read
// whole twice (before and after the store, so that saves made meanwhile
// are no problem), as `rotor audit verify` does: each as [Check] does, and
// more than a load can afford: the chain must hold, at the seq each
// state's seal names, the very record the saver had read (a chain put back
// from an older copy and appended to since fails here), and a secret the
// chain records saves of must still be stored. (The record check is
// skipped for a state saved before the chain's last `rotor audit import`:
// its seal names a record of the imported log.) It returns the number of
// stored secrets checked, and every problem found, each wrapping
// [ErrTampered], joined.
func Verify(ctx context.Context, st store.Store, names []string, saves *audit.Saves, salt []byte) (int, error) {
	key := Key(salt)
	// The saves are read before the store, the records the seals name
	// after it, so that saves made while Verify runs are no problem.
	before, err := saves.Scan(ctx, nil)
	if err != nil {
		return 0, err
	}
	stored := make(map[string]*store.Secret, len(names))
	var want []uint64
	for _, name := range names {
		s, _, err := st.Load(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return 0, err
		}
		stored[name] = s
		if s.Seal != nil && s.Seal.ChainSeq > 0 {
			want = append(want, s.Seal.ChainSeq)
		}
	}
	scan, err := saves.Scan(ctx, want)
	if err != nil {
		return 0, err
	}
	head, all, hashes := scan.Head, before.Saves, scan.Hashes
	var errs []error
	for _, name := range names {
		last, recorded := all[name]
		s := stored[name]
		if s == nil {
			if recorded {
				errs = append(errs, &Error{Secret: name, Reason: fmt.Sprintf("the store does not hold it but the audit chain records save %d of it (record %d): it was deleted", last.Version, last.Seq)})
			}
			continue
		}
		if err := Check(key, s, head, last, recorded); err != nil {
			errs = append(errs, err)
			continue
		}
		// A state saved before `rotor audit import` names a record of the
		// imported log, which the chain holds under another seq.
		if seal := s.Seal; seal != nil && seal.ChainSeq > 0 && seal.ChainSeq >= scan.LastImport && hashes[seal.ChainSeq] != seal.ChainHash {
			errs = append(errs, &Error{Secret: name, Reason: fmt.Sprintf("the stored state was saved after audit record %d, but the chain holds another record %d: the audit chain was put back from an older copy and appended to since", seal.ChainSeq, seal.ChainSeq)})
		}
	}
	return len(stored), errors.Join(errs...)
}
