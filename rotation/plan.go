package rotation

import (
	"context"

	"github.com/rotor-dev/rotor/store"
)

// Plans say what [Engine.Rotate], [Engine.Rollback] and [Engine.Revoke]
// would do with a secret as it is now, decided by the same rules, for `--dry-run`: a plan
// changes nothing, takes no lease, writes no audit record and never asks
// the issuer (so it cannot say whether the issuer would still accept a
// key; the operation itself tests that first). A plan may be stale by
// the time the operation runs: another rotor may act in between.

// RotatePlan is what Rotate would do before it starts a rotation of its
// own: a zero RotatePlan means it would start one at once.
type RotatePlan struct {
	// Resume is an interrupted rotation or rollback whose lease is no
	// longer live: Rotate would take it over and finish it instead of
	// starting a rotation, or nil.
	Resume *store.Rotation
	// Interrupted is an interrupted operation (a revoke, a stage, an
	// aborted rotation) Rotate would finish before it starts a rotation,
	// or nil.
	Interrupted *store.Rotation
}

// PlanRotate returns what Rotate would do with s, the secret as loaded,
// or the [*InProgressError] it would stop with while another rotor holds a
// live lease on the secret (see [Engine.Rotate]). Whether the secret is
// due is [Engine.Due]'s to say.
func (e *Engine) PlanRotate(s *store.Secret) (RotatePlan, error) {
	var p RotatePlan
	rot := s.Rotation
	switch {
	case rot == nil:
	case e.live(rot):
		return p, inProgress(s, e.now())
	case rot.OpKind() == store.OpRotate && rot.Step != store.StepAborted, rot.OpKind() == store.OpRollback:
		p.Resume = rot
	default:
		p.Interrupted = rot
	}
	return p, nil
}

// RollbackPlan is what Rollback would do.
type RollbackPlan struct {
	// Interrupted is an interrupted operation (a revoke, a stage) that
	// Rollback would finish first, or nil.
	Interrupted *store.Rotation
	// Resume is an interrupted rollback that Rollback would resume instead
	// of starting another, or nil. The fields below are then empty.
	Resume *store.Rotation
	// Restore is the id of the previous key that would become current
	// again, and SetAside that of the current key it would replace.
	Restore, SetAside string
	// KeepAsPrevious: the replaced key would stay as previous (valid until
	// the end of the restored key's grace period) instead of being retired
	// for revocation.
	KeepAsPrevious bool
}

// PlanRollback returns what Rollback(ctx, sec) would do with s, the
// secret as loaded, or the error it would refuse with: an
// [*InProgressError] while another operation holds the secret or a
// rotation is unfinished, an error wrapping [ErrNothingToRollBack] when
// previous cannot become current again.
func (e *Engine) PlanRollback(sec Secret, s *store.Secret) (RollbackPlan, error) {
	var p RollbackPlan
	if rot := s.Rotation; rot != nil {
		if e.live(rot) || rot.OpKind() == store.OpRotate && rot.Step != store.StepAborted {
			return p, inProgress(s, e.now())
		}
		if rot.OpKind() == store.OpRollback {
			p.Resume = rot
			return p, nil
		}
		p.Interrupted = rot
	}
	if err := e.canRollBack(s); err != nil {
		return p, err
	}
	p.Restore, p.SetAside, p.KeepAsPrevious = s.Previous.ID, s.Current.ID, sec.KeepFailedAsPrevious
	return p, nil
}

// RevokePlan is what Revoke would do.
type RevokePlan struct {
	// Interrupted is an interrupted operation Revoke would finish first
	// (a revoke of its KeyID, a stage), or nil.
	Interrupted *store.Rotation
	// Finish lists keys marked revoking by an interrupted run: Revoke
	// asks the issuer again whatever their expiry.
	Finish []string
	// Revoke lists keys Revoke would revoke at the issuer.
	Revoke []string
	// Waiting lists keys skipped because their grace period is not over.
	Waiting []string
	// Refused holds, per key Revoke would refuse, the error it would
	// refuse it with (wrapping [ErrNotExpired], [ErrReloadPending] or
	// [ErrKeyInUse]), in the order Revoke meets them.
	Refused []error
}

// PlanRevoke returns what Revoke(ctx, sec, opts) would do with s, the
// secret as loaded, or an [*InProgressError] when Revoke would do nothing
// because a rotation or rollback is unfinished. Like Revoke, it asks the
// secret's consumers (sec.Usage) whether they still use a key.
func (e *Engine) PlanRevoke(ctx context.Context, sec Secret, s *store.Secret, opts RevokeOptions) (RevokePlan, error) {
	var p RevokePlan
	done := map[string]bool{}
	if rot := s.Rotation; rot != nil {
		kind := rot.OpKind()
		if e.live(rot) || kind == store.OpRollback || kind == store.OpRotate && rot.Step != store.StepAborted {
			return p, inProgress(s, e.now())
		}
		p.Interrupted = rot
		if kind == store.OpRevoke {
			done[rot.KeyID] = true
		}
	}
	var candidates []*store.Key
	if s.Previous != nil {
		candidates = append(candidates, s.Previous)
	}
	for i := range s.Retired {
		candidates = append(candidates, &s.Retired[i])
	}
	for _, k := range candidates {
		if k.Revoking() && !done[k.ID] {
			done[k.ID] = true
			p.Finish = append(p.Finish, k.ID)
		}
	}
	for _, k := range candidates {
		if done[k.ID] {
			continue
		}
		waiting, err := e.revocable(ctx, sec, s, k, opts)
		switch {
		case err != nil:
			p.Refused = append(p.Refused, err)
		case !waiting:
			p.Revoke = append(p.Revoke, k.ID)
		}
		if waiting {
			p.Waiting = append(p.Waiting, k.ID)
		}
	}
	return p, nil
}
