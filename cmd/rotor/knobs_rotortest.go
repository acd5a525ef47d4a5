//go:build rotortest

package main

import "github.com/rotor-dev/rotor/internal/testknobs"

// buildKnobs returns the test knobs: this binary was built with
// -tags rotortest, for tests.
func buildKnobs() *knobs { return &knobs{clock: testknobs.Clock, crash: testknobs.Crash} }
