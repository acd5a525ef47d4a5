package notify

import (
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/rotation"
)

// Kind is what a notification is about.
type Kind string

// The kinds of notification, in the order [Kinds] lists them.
const (
	// KindRotated: a rotation finished; KeyID is the new current key.
	KindRotated Kind = "rotated"
	// KindRotationFailed: a rotation or rollback failed (it was rolled
	// back, set aside, or left to resume), for a reason other than one the
	// operator must act on.
	KindRotationFailed Kind = "rotation_failed"
	// KindRolledBack: a rollback finished; KeyID is current again.
	KindRolledBack Kind = "rolled_back"
	// KindActionRequired: an operation stopped until the operator acts
	// (a Clerk key to create and stage, a key to delete in the Dashboard);
	// Steps says how.
	KindActionRequired Kind = "action_required"
	// KindRevokeDue: a key due for revocation could not be revoked (the
	// issuer failed); it stays marked and the next revoke tries again.
	KindRevokeDue Kind = "revoke_due"
	// KindRevoked: a key was revoked at its issuer and cleared.
	KindRevoked Kind = "revoked"
	// KindAuditChainBroken: verifying the audit chain, or appending to
	// it, found it modified, truncated or reordered.
	KindAuditChainBroken Kind = "audit_chain_broken"
)

// Kinds lists every kind, the values a target's events may name.
var Kinds = []Kind{KindRotated, KindRotationFailed, KindRolledBack, KindActionRequired, KindRevokeDue, KindRevoked, KindAuditChainBroken}

// Event is one notification. It never holds a secret value: key ids only,
// and texts rotor already puts in its audit records.
type Event struct {
	Kind Kind
	// Secret is the managed secret's name; empty for
	// [KindAuditChainBroken].
	Secret string
	// KeyID is the id of the key concerned, or empty.
	KeyID string
	// Operation is the id of the rotor operation (as in the audit log).
	Operation string
	// Initiator is who ran the operation.
	Initiator string
	// Time is when rotor recorded what happened.
	Time time.Time
	// Summary is one line for humans.
	Summary string
	// Steps are what the operator must do, for [KindActionRequired].
	Steps []string
}

// classifier turns the engine's audit events into notifications: at most
// one of each kind per operation.
type classifier struct {
	mu   sync.Mutex
	sent map[string]map[Kind]bool // by operation, until its terminal event
}

// classify returns the notification e calls for, if any.
func (c *classifier) classify(e rotation.Event, initiator string, now time.Time) (Event, bool) {
	kind, ok := kindOf(e)
	if !ok {
		return Event{}, false
	}
	n := Event{Kind: kind, Secret: e.Secret, KeyID: e.KeyID, Operation: e.Op, Initiator: initiator, Time: now, Summary: summary(kind, e)}
	var are *provider.ActionRequiredError
	if kind == KindActionRequired && errors.As(e.Err, &are) {
		n.Steps = are.Steps
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sent == nil {
		c.sent = map[string]map[Kind]bool{}
	}
	seen := c.sent[e.Op]
	if e.End != "" {
		delete(c.sent, e.Op) // an operation's last event; ids are not reused
	} else if seen == nil {
		seen = map[Kind]bool{}
		c.sent[e.Op] = seen
	}
	if seen[kind] {
		return Event{}, false
	}
	if seen != nil {
		seen[kind] = true
	}
	return n, true
}

// kindOf maps an engine event to the kind of notification it calls for.
// Events outside an operation (refusals before anything started) call for
// none.
func kindOf(e rotation.Event) (Kind, bool) {
	if e.Op == "" {
		return "", false
	}
	op, _, _ := strings.Cut(e.Action, ".")
	switch {
	case e.Status == rotation.StatusFailed && errors.Is(e.Err, provider.ErrCannotMint):
		return KindActionRequired, true
	case e.Status == rotation.StatusFailed && op == "revoke":
		return KindRevokeDue, true
	case e.Status == rotation.StatusFailed && (op == "rotate" || op == "rollback"):
		return KindRotationFailed, true
	case e.End != rotation.EndSucceeded && e.End != rotation.EndRecovered:
		return "", false
	case e.Action == "rotate.finish" || e.Action == "rotate":
		return KindRotated, true
	case e.Action == "rollback":
		return KindRolledBack, true
	case e.Action == "revoke":
		return KindRevoked, true
	}
	return "", false
}

// summary is the one line a notification of kind about e says.
func summary(kind Kind, e rotation.Event) string {
	var s string
	switch kind {
	case KindRotated:
		s = e.Secret + " rotated: current key is " + e.KeyID
	case KindRolledBack:
		s = e.Secret + " rolled back: current key is " + e.KeyID
	case KindRevoked:
		s = e.Secret + ": key " + e.KeyID + " revoked"
	case KindRotationFailed:
		s = e.Secret + ": " + e.Action + " failed"
	case KindActionRequired:
		s = e.Secret + ": operator action required"
	case KindRevokeDue:
		s = e.Secret + ": key " + e.KeyID + " is due for revocation and could not be revoked"
	}
	if e.Detail != "" && kind != KindRotated && kind != KindRolledBack {
		s += ": " + e.Detail
	}
	return s
}
