package memstore

import (
	"testing"

	"github.com/rotor-dev/rotor/store"
	"github.com/rotor-dev/rotor/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return New() })
}
