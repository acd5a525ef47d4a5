package rotation_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

func TestScenariosMemstore(t *testing.T) {
	rotationtest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}

func TestProviderScenariosSingleAccountIssuer(t *testing.T) {
	rotationtest.RunProvider(t, rotationtest.ProviderCase{
		New:              func(*testing.T) provider.Provider { return rotationtest.NewIssuer(1) },
		SingleCredential: true,
	})
}

func TestProviderScenariosAlternatingIssuer(t *testing.T) {
	rotationtest.RunProvider(t, rotationtest.ProviderCase{
		New: func(*testing.T) provider.Provider { return rotationtest.NewIssuer(2) },
	})
}

// refusingIssuer is an Issuer whose Apply fails with err.
type refusingIssuer struct {
	*rotationtest.Issuer
	err error
}

func (p *refusingIssuer) Apply(ctx context.Context, k store.Key) error {
	if p.err != nil {
		return p.err
	}
	return p.Issuer.Apply(ctx, k)
}

// TestApplyFailure checks what a failed Apply of a freshly prepared key
// leaves behind: nothing when the issuer definitely did not change, and a
// resumable rotation with the same pending key when the outcome is unknown.
func TestApplyFailure(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantPending bool
	}{
		{"definite refusal leaves nothing changed", fmt.Errorf("permission denied: %w", provider.ErrNotApplied), false},
		{"unknown outcome keeps the key for the next run", errors.New("connection reset"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st := memstore.New()
			p := &refusingIssuer{Issuer: rotationtest.NewIssuer(1)}
			eng := &rotation.Engine{Store: st, Salt: []byte("s"), Initiator: "user:test"}
			sec := rotation.Secret{Name: "db", Provider: p, Every: time.Hour, Grace: time.Minute, Lease: time.Minute}
			if _, err := eng.Rotate(ctx, sec); err != nil {
				t.Fatal(err)
			}
			before, _, _ := st.Load(ctx, "db")
			p.err = tc.err
			if _, err := eng.Rotate(ctx, sec); !errors.Is(err, tc.err) {
				t.Fatalf("rotate = %v, want %v", err, tc.err)
			}
			s, _, _ := st.Load(ctx, "db")
			if s.Current.Value != before.Current.Value {
				t.Fatal("current changed")
			}
			if got := s.Pending != nil && s.Rotation != nil; got != tc.wantPending {
				t.Fatalf("pending kept = %v (rotation %v), want %v", s.Pending != nil, s.Rotation, tc.wantPending)
			}
			if !tc.wantPending {
				return
			}
			pending := s.Pending.Value
			p.err = nil
			res, err := eng.Rotate(ctx, sec)
			if err != nil || !res.Resumed {
				t.Fatalf("rerun = %+v, %v; want a resumed rotation", res, err)
			}
			if s, _, _ := st.Load(ctx, "db"); s.Current.Value != pending {
				t.Fatal("the resumed rotation did not promote the pending key it had saved")
			}
		})
	}
}
