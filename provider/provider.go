// Package provider defines who mints, tests and revokes a credential.
//
// A [Provider] speaks to the system that issues a credential (Clerk, a
// database, nothing at all for app-owned random keys). The rotation engine
// calls Mint to obtain a new credential when nothing is pre-staged, Test
// before anything is accepted or promoted, and Revoke once a key's grace
// period is over. Capabilities that only some providers have are optional
// interfaces ([PromoteChecker], [Preparer]) the engine type-asserts.
//
// # Writing a provider
//
// A provider is a package under provider/ that owns its options and
// knows nothing of rotor.yaml (it must not import package config; a test
// there enforces it). It defines:
//
//   - Options: exported, documented fields, no struct tags, durations as
//     time.Duration, never a secret value (name the environment variable or
//     file that holds one instead). rotor.yaml's keys are the field names in
//     snake_case (APIURL → api_url).
//   - Default… constants, and Options.WithDefaults, which returns the
//     options with empty fields set to them: the one place defaults live.
//   - Options.Validate, which reports every problem as a
//     [github.com/rotor-dev/rotor/field.List] whose
//     paths name fields in snake_case (field.NewPath("machine_id")); config
//     adds the YAML path and line. It must never quote a secret.
//   - Options.ResolvePaths(dir), only if some field is a file or program
//     path, making relative ones relative to dir (the config's directory).
//   - Options.ConsumedEnv() []string, only if the provider reads
//     environment variables itself (an API key, an admin connection
//     string): rotor keeps them from hooks and `rotor run` children
//     unless the config passes them on (see config.Config.ConsumedEnv).
//   - New(secret string, o Options, …) (*Provider, error), which applies
//     WithDefaults and Validate itself, so that Go callers get the same
//     defaults and checks as rotor.yaml.
//
// Then one line in config/providers.go names it and says how to build it:
//
//	providerOf("postgres", func(name string, o postgres.Options) (provider.Provider, error) { return postgres.New(name, o) }),
//
// which makes `provider: postgres` and its `postgres:` block valid in
// rotor.yaml (a name with '-' has a block with '_': clerk-machine,
// clerk_machine) and wires it into every command. Document the block in the
// README's configuration section.
//
// # Intent before side effect
//
// A provider whose mint changes the issuer in a way that cannot be looked
// up afterwards (a database password is set, never read back) implements
// [Preparer]: Prepare picks the new value with no side effect, the engine
// saves it as the pending key, and only then does Apply make the issuer
// accept it. A run that dies at any point leaves the value in the store, and
// the next run applies the same value again instead of losing it.
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
	// ErrNotApplied means [Preparer.Apply] definitely did not change the
	// issuer (permission denied, unknown account, no connection was made),
	// so the prepared value can be dropped with nothing to undo. An Apply
	// error that does not wrap it leaves the outcome unknown.
	ErrNotApplied = errors.New("change not applied at the issuer")
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
	// Previous is the key current replaced, while it is still within its
	// grace period; nil when there is none or it has expired. A provider
	// that reuses issuer-side accounts must not take the one it serves.
	Previous *store.Key
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

// Preparer is implemented by providers that mint by changing the issuer
// (setting a database password) and split that in two, so that the new
// value is saved before the issuer ever sees it. The engine calls Prepare
// instead of [Provider.Mint], saves the value as the pending key, then calls
// Apply; only when Apply has returned nil is the create step recorded.
//
// Apply makes the issuer accept key. It must be idempotent: the engine calls
// it again, with the same key, after a run died before recording it. The
// engine also calls it for a key that becomes current again when a rotation
// is aborted after Apply or rolled back, because an issuer that holds one
// credential at a time (a single database role) must take the old one back.
// Apply returns an error wrapping [ErrNotApplied] when the issuer definitely
// did not change; the engine then drops a freshly prepared value and ends
// the rotation with nothing changed. Any other error keeps the pending key
// for the next run to apply.
type Preparer interface {
	Prepare(ctx context.Context, req MintRequest) (Credential, error)
	Apply(ctx context.Context, key store.Key) error
}
