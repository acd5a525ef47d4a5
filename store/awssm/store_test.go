package awssm

import (
	"testing"

	"github.com/rotor-dev/rotor/internal/awsfake"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/storetest"
)

// newTestStore returns a store on a fresh emulator.
func newTestStore(t *testing.T) (*Store, *awsfake.Server) {
	t.Helper()
	srv := awsfake.Start(t, awsfake.Options{})
	return NewFromClient(srv.Client(), Options{}), srv
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, _ := newTestStore(t)
		return s
	})
}

func TestEngineScenarios(t *testing.T) {
	rotationtest.Run(t, func(t *testing.T) store.Store {
		s, _ := newTestStore(t)
		return s
	})
}
