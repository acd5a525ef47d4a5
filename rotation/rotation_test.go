package rotation_test

import (
	"testing"

	"github.com/rotor-dev/rotor/internal/memstore"
	"github.com/rotor-dev/rotor/rotation/rotationtest"
	"github.com/rotor-dev/rotor/store"
)

func TestScenariosMemstore(t *testing.T) {
	rotationtest.Run(t, func(t *testing.T) store.Store { return memstore.New() })
}
