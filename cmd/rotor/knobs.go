package main

import (
	"io"
	"time"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/store"
)

// knobs are rotor's test-only knobs (package internal/testknobs): a
// shifted clock and crashes after a step. Only a build with the tag
// rotortest (knobs_rotortest.go), or the test binary, has them; a release
// build's buildKnobs (knobs_release.go) returns nil, and rotor then
// refuses to run with a knob's variable set rather than ignore it
// silently.
type knobs struct {
	clock func(getenv func(string) string, now func() time.Time, parse func(string) (time.Duration, error), warn io.Writer) (func() time.Time, error)
	crash func(getenv func(string) string) (func(string, store.Step), error)
}

// releaseRefuses lists the knobs' variables a release build refuses: the
// names of testknobs.Names (which a release build must not import; a test
// keeps the two lists equal).
var releaseRefuses = []string{"ROTOR_CLOCK_SKEW", "ROTOR_FAULT"}

// refuseKnobs fails when a knob's variable is set in a build without
// knobs.
func (g *globals) refuseKnobs() error {
	for _, name := range releaseRefuses {
		if g.env.getenv(name) != "" {
			return usagef("%s is a test knob that this build of rotor does not have (tests build rotor with -tags rotortest); unset it", name)
		}
	}
	return nil
}

// clock returns the time source: the environment's, shifted by
// ROTOR_CLOCK_SKEW in a build with knobs.
func (g *globals) clock() (func() time.Time, error) {
	k := g.env.knobs
	if k == nil {
		if err := g.refuseKnobs(); err != nil {
			return nil, err
		}
		return g.env.now, nil
	}
	now, err := k.clock(g.env.getenv, g.env.now, config.ParseDuration, g.env.stderr)
	if err != nil {
		return nil, usageError{err}
	}
	return now, nil
}

// faultHook returns the engine's OnStep for ROTOR_FAULT=crash-after:STEP in
// a build with knobs, else nil.
func (g *globals) faultHook() (func(string, store.Step), error) {
	k := g.env.knobs
	if k == nil {
		return nil, g.refuseKnobs()
	}
	hook, err := k.crash(g.env.getenv)
	if err != nil {
		return nil, usageError{err}
	}
	return hook, nil
}
