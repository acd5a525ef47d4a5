// Package provider defines who mints, tests and revokes a credential.
//
// A [Provider] speaks to the system that issues a credential (Clerk, a
// database, nothing at all for app-owned random keys). The rotation engine
// calls Mint to obtain a new credential when nothing is pre-staged, Test
// before anything is accepted or promoted, and Revoke once a key's grace
// period is over. Capabilities that only some providers have are optional
// interfaces ([PromoteChecker]) the engine type-asserts.
package provider

import (
	"context"
	"errors"
	"time"

	"github.com/rotor-dev/rotor/store"
)

// Sentinel errors. Implementations wrap them so callers can use errors.Is.
var (
	// ErrRejected means the issuer answered that the credential is not
	// valid (for Clerk: 401 clerk_key_invalid). It is a definite answer,
	// unlike a timeout or a 5xx, which are returned unwrapped.
	ErrRejected = errors.New("credential rejected by its issuer")
	// ErrCannotMint means the provider cannot create a credential by itself;
	// the error is an *ActionRequiredError saying what the operator must do.
	ErrCannotMint = errors.New("provider cannot mint a credential")
)

// ActionRequiredError tells the operator what to do by hand, e.g. create a
// key in a dashboard and stage it. Its message never contains secret values.
type ActionRequiredError struct {
	Action string // one line: what is needed
	Steps  []string
}

func (e *ActionRequiredError) Error() string { return e.Action }

// Is makes errors.Is(err, ErrCannotMint) true.
func (e *ActionRequiredError) Is(target error) bool { return target == ErrCannotMint }

// Credential is a freshly minted value and metadata worth keeping with it
// (never secret: e.g. the dashboard name of a key).
type Credential struct {
	Value string
	Meta  map[string]string
}

// MintRequest carries what a provider may need to mint.
type MintRequest struct {
	Secret  string        // the managed secret's name
	Current *store.Key    // the key being replaced; nil on first issue
	Grace   time.Duration // how long the replaced key must stay valid
}

// Provider is the contract every credential provider implements.
type Provider interface {
	// Mint creates a new credential. Providers that cannot (Clerk instance
	// keys) return an *ActionRequiredError.
	Mint(ctx context.Context, req MintRequest) (Credential, error)

	// Test checks that value works against its issuer. It returns an error
	// wrapping ErrRejected when the issuer rejects it; any other error means
	// the answer is unknown (network, 5xx) and the caller may retry.
	Test(ctx context.Context, value string) error

	// Revoke invalidates key at its issuer. It must be idempotent: revoking
	// a key that is already revoked or unknown to the issuer returns nil.
	Revoke(ctx context.Context, key store.Key) error
}

// PromoteChecker is implemented by providers that refuse some candidates
// over some current keys, e.g. a Clerk test key over a live key. The engine
// calls it before a staged key is accepted and before pending is promoted.
type PromoteChecker interface {
	CheckPromote(current *store.Key, candidate string) error
}
