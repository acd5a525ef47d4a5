//go:build !rotortest

package main

// buildKnobs returns nil: a release build has no test knobs.
func buildKnobs() *knobs { return nil }
