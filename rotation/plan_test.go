package rotation_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

// TestPlansAgreeWithOperations: in each state, PlanRevoke and
// PlanRollback predict what Revoke and Rollback then do (the keys
// revoked, the refusal, the key restored), and planning changes nothing
// in the store.
func TestPlansAgreeWithOperations(t *testing.T) {
	tests := []struct {
		name      string
		rotations int
		later     time.Duration // the clock moves on this much before planning
		opts      rotation.RevokeOptions
		wantErr   error // what Revoke refuses with, if anything
	}{
		{"previous within grace is refused", 2, 0, rotation.RevokeOptions{}, rotation.ErrNotExpired},
		{"previous within grace is skipped by --expired", 2, 0, rotation.RevokeOptions{ExpiredOnly: true}, nil},
		{"forced revoke of previous", 2, 0, rotation.RevokeOptions{Force: true}, nil},
		{"expired previous is revoked", 2, 2 * time.Minute, rotation.RevokeOptions{}, nil},
		{"nothing to revoke after one rotation", 1, 0, rotation.RevokeOptions{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := memstore.New()
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test", Now: func() time.Time { return now }}
			sec := rotation.Secret{Name: "db", Provider: rotationtest.NewIssuer(2), Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
			for range tc.rotations {
				if _, err := eng.Rotate(ctx, sec); err != nil {
					t.Fatal(err)
				}
			}
			now = now.Add(tc.later)
			s, ver, err := eng.Load(ctx, "db")
			if err != nil {
				t.Fatal(err)
			}

			rp, rerr := eng.PlanRollback(sec, s)
			p, err := eng.PlanRevoke(ctx, sec, s, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, v, _ := st.Load(ctx, "db"); v != ver {
				t.Fatal("planning changed the store")
			}

			res, err := eng.Revoke(ctx, sec, tc.opts)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (tc.wantErr == nil) {
				t.Fatalf("revoke = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(p.Revoke, res.Revoked) || !slices.Equal(p.Waiting, res.Waiting) {
				t.Errorf("plan revokes %v and waits for %v; revoke revoked %v and waited for %v", p.Revoke, p.Waiting, res.Revoked, res.Waiting)
			}
			if got := errors.Join(p.Refused...); !errors.Is(got, tc.wantErr) || (got == nil) != (tc.wantErr == nil) {
				t.Errorf("plan refuses with %v, want %v", got, tc.wantErr)
			}

			// Rollback, from the state the plan saw (revoke may have
			// changed it since: plan again when it did).
			s, _, _ = eng.Load(ctx, "db")
			if len(res.Revoked) > 0 {
				rp, rerr = eng.PlanRollback(sec, s)
			}
			rres, err := eng.Rollback(ctx, sec)
			if (err == nil) != (rerr == nil) || rerr != nil && !errors.Is(err, rotation.ErrNothingToRollBack) != !errors.Is(rerr, rotation.ErrNothingToRollBack) {
				t.Fatalf("rollback = %v; the plan said %v", err, rerr)
			}
			if err == nil && (rres.Current != rp.Restore || rp.SetAside != store.KeyID(s.Current)) {
				t.Errorf("rollback restored %s; the plan said %s, setting aside %s", rres.Current, rp.Restore, rp.SetAside)
			}
		})
	}
}

// TestPlansRefuseWhileInProgress: while an operation holds the secret,
// every plan refuses as the operations do, with an InProgressError; once
// its lease expires, PlanRotate says Rotate would resume it, as it does.
func TestPlansRefuseWhileInProgress(t *testing.T) {
	ctx := context.Background()
	st := memstore.New()
	eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
	sec := rotation.Secret{Name: "db", Provider: rotationtest.NewIssuer(2), Every: time.Hour, Grace: time.Minute, Lease: time.Hour}
	if _, err := eng.Rotate(ctx, sec); err != nil {
		t.Fatal(err)
	}
	s, ver, err := eng.Load(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	// Another rotor's live lease on a rotation it has just started.
	s.Rotation = &store.Rotation{ID: "r-other", Kind: store.OpRotate, Holder: "other-host:1", StartedAt: time.Now(), LeaseExpiresAt: time.Now().Add(time.Hour)}
	if _, err := st.Save(ctx, s, ver); err != nil {
		t.Fatal(err)
	}
	var ipe *rotation.InProgressError
	if _, err := eng.PlanRotate(s); !errors.As(err, &ipe) || ipe.ID != "r-other" || ipe.Holder != "other-host:1" {
		t.Errorf("PlanRotate = %v, want the InProgressError of r-other held by other-host:1", err)
	}
	if _, err := eng.Rotate(ctx, sec); !errors.As(err, &ipe) {
		t.Errorf("setup: Rotate = %v, want an InProgressError", err)
	}
	if _, err := eng.PlanRollback(sec, s); !errors.As(err, &ipe) {
		t.Errorf("PlanRollback = %v, want an InProgressError", err)
	}
	if _, err := eng.PlanRevoke(ctx, sec, s, rotation.RevokeOptions{Force: true}); !errors.As(err, &ipe) {
		t.Errorf("PlanRevoke = %v, want an InProgressError", err)
	}
	if _, err := eng.Rollback(ctx, sec); !errors.As(err, &ipe) {
		t.Errorf("setup: Rollback = %v, want an InProgressError", err)
	}

	// The lease expires: Rotate takes the rotation over and finishes it.
	later := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test", Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}
	p, err := later.PlanRotate(s)
	if err != nil || p.Resume == nil || p.Resume.ID != "r-other" || p.Interrupted != nil {
		t.Fatalf("PlanRotate after the lease expired = %+v, %v; want to resume r-other", p, err)
	}
	res, err := later.Rotate(ctx, sec)
	if err != nil || !res.Resumed || res.Rotation != "r-other" {
		t.Fatalf("Rotate after the lease expired = %+v, %v; want r-other resumed", res, err)
	}
}
