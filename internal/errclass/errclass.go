// Package errclass sorts rotor's errors into the classes its two
// interfaces report: the CLI's exit codes (cmd/rotor) and the API's HTTP
// statuses and error codes (package server). One classification keeps the
// two from drifting: a rotation in progress is exit 3 and 409
// rotation_in_progress because it is [InProgress], not because two tables
// happen to agree.
//
// Classification goes by the sentinel errors the packages document
// (errors.Is), never by message text.
package errclass

import (
	"context"
	"errors"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/binding"
	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
	"github.com/rotor-dev/rotor/store"
)

// Class is what kind of failure an error is.
type Class int

// The classes. Other is anything unclassified: an internal error to the
// API, exit 1 to the CLI.
const (
	Other             Class = iota
	RolledBack              // reload or verify failed after promote; rolled back
	InProgress              // another rotator holds the lease
	AuditBroken             // the audit chain is broken, or the store does not match it
	ActionRequired          // an operator must act (stage a key, delete one)
	NothingToRollBack       // previous is empty, revoked or expired
	KeyRejected             // the issuer rejects the key, or it is refused over the current one
	SameKey                 // a staged value is already in use
	NotExpired              // revoke inside the grace period, without force
	KeyInUse                // consumers still use the key to revoke
	NotFound                // no such secret, or no current key
	Conflict                // the secret changed concurrently; retry
	NoRotation              // nothing to abort
	Timeout                 // the operation did not finish in time
)

// rules lists, in order of precedence, which sentinels make which class.
// An error wrapping several (errors.Join of a rotation's failure and its
// rollback, of several secrets' results) gets the first: what happened to
// the keys (rolled back, in progress) before why, and a refusal before a
// generic not found or conflict.
var rules = []struct {
	class Class
	errs  []error
}{
	{RolledBack, []error{rotation.ErrRolledBack}},
	{InProgress, []error{rotation.ErrRotationInProgress}},
	{AuditBroken, []error{audit.ErrChainBroken, binding.ErrTampered}},
	{ActionRequired, []error{provider.ErrCannotMint}},
	{NothingToRollBack, []error{rotation.ErrNothingToRollBack}},
	{KeyRejected, []error{rotation.ErrTestFailed, rotation.ErrPromoteRefused, rotation.ErrKeyRevoked, provider.ErrRejected}},
	{SameKey, []error{rotation.ErrSameKey}},
	{NotExpired, []error{rotation.ErrNotExpired}},
	{KeyInUse, []error{rotation.ErrKeyInUse, rotation.ErrReloadPending}},
	{NotFound, []error{store.ErrNotFound, keyring.ErrNoCurrentKey}},
	{Conflict, []error{rotation.ErrLeaseLost, store.ErrConflict}},
	{NoRotation, []error{rotation.ErrNoRotation}},
	{Timeout, []error{context.DeadlineExceeded}},
}

// Of returns the class of err; nil and unclassified errors are Other.
func Of(err error) Class {
	if err == nil {
		return Other
	}
	for _, r := range rules {
		for _, target := range r.errs {
			if errors.Is(err, target) {
				return r.class
			}
		}
	}
	return Other
}

// Refused reports whether c is a refusal by one of rotor's safety rules
// (exit 7): the operation would have been unsafe, and nothing changed.
func (c Class) Refused() bool {
	switch c {
	case NothingToRollBack, KeyRejected, SameKey, NotExpired, KeyInUse:
		return true
	}
	return false
}

// codes are the stable error codes (package api) of the classes the API
// and the CLI's JSON error document report.
var codes = map[Class]string{
	RolledBack:        api.CodeRolledBack,
	InProgress:        api.CodeRotationInProgress,
	AuditBroken:       api.CodeAuditBroken,
	ActionRequired:    api.CodeActionRequired,
	NothingToRollBack: api.CodeNothingToRollBack,
	KeyRejected:       api.CodeKeyRejected,
	SameKey:           api.CodeSameKey,
	NotExpired:        api.CodeNotExpired,
	KeyInUse:          api.CodeKeyInUse,
	NotFound:          api.CodeNotFound,
	Conflict:          api.CodeConflict,
	NoRotation:        api.CodeNoRotation,
	Timeout:           api.CodeTimeout,
}

// Code returns the error code of c (api.Code…), "" for Other, which the
// API reports as internal and the CLI as error.
func (c Class) Code() string { return codes[c] }
