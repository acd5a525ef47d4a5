package api

import (
	"time"

	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// StatusOf returns the status of the stored secret s as far as s tells
// it: its slots, retired keys, operation in progress, last rotation,
// reload and orphans. The caller sets what the configuration decides:
// Provider, NextRotationAt, Due and Warning.
func StatusOf(s *store.Secret) Status {
	v := Status{
		Name:    s.Name,
		Current: KeyOf(s.Current), Previous: KeyOf(s.Previous),
		Next: KeyOf(s.Next), Pending: KeyOf(s.Pending),
		Retired:       []Key{},
		LastRotatedAt: TimeOf(s.LastRotatedAt),
		ReloadedKeyID: s.ReloadedKeyID,
		Orphans:       []Orphan{},
	}
	for i := range s.Retired {
		v.Retired = append(v.Retired, *KeyOf(&s.Retired[i]))
	}
	for _, o := range s.Orphans {
		v.Orphans = append(v.Orphans, Orphan{RequestID: o.RequestID, Operation: o.Operation, Action: o.Action, At: o.At, Check: o.Check})
	}
	if r := s.Rotation; r != nil {
		v.Rotation = &Operation{ID: r.ID, Step: StepName(r.Step), StartedAt: r.StartedAt,
			Initiator: r.Initiator, Holder: r.Holder, LeaseExpiresAt: r.LeaseExpiresAt, Kind: string(r.OpKind())}
	}
	return v
}

// KeyOf returns the view of k, nil for an empty slot. The value stays
// behind.
func KeyOf(k *store.Key) *Key {
	if k == nil {
		return nil
	}
	return &Key{KeyID: k.ID, CreatedAt: k.CreatedAt, ExpiresAt: TimeOf(k.ExpiresAt), Source: k.Source,
		State: string(k.State), IssuerExpiresAt: TimeOf(k.IssuerExpiresAt())}
}

// TimeOf returns t, or nil for the zero time: the documents' null.
func TimeOf(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// StepName names a recorded step: "start" before the first.
func StepName(s store.Step) string {
	if s == "" {
		return "start"
	}
	return string(s)
}

// ResultOf returns the document of a finished rotation or rollback.
func ResultOf(r rotation.Result) Result {
	return Result{Secret: r.Secret, OperationID: r.Rotation, Kind: string(r.Kind), Resumed: r.Resumed,
		CurrentKeyID: r.Current, PreviousKeyID: r.Previous}
}

// RevokedOf returns the document of a revoke; its lists are never null.
func RevokedOf(r rotation.RevokeResult) Revoked {
	v := Revoked{Secret: r.Secret, Revoked: []string{}, Waiting: []string{}}
	v.Revoked = append(v.Revoked, r.Revoked...)
	v.Waiting = append(v.Waiting, r.Waiting...)
	return v
}
