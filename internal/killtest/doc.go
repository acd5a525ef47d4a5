// Package killtest is the kill-anywhere harness of rotor's crash tests: an
// issuer stand-in that records every key it mints and revokes, a runner
// that SIGKILLs a rotor process (alone, or with every process it started)
// at a chosen moment and waits until nothing it started still runs, and the
// invariants checked after every kill (see [Check]).
//
// The issuer ([Serve]) speaks the exec provider's protocol (version 2), so
// rotor drives it exactly as it drives a real command: its ledger is the
// ground truth of what exists at the issuer, against which the store and
// the audit log are judged.
//
// The runner ([Run]) is Linux-only: it needs PR_SET_CHILD_SUBREAPER and
// /proc to find and wait for the hooks of a rotor killed alone.
package killtest
