// Package provider defines who mints, tests and revokes a credential.
//
// A [Provider] speaks to the system that issues a credential (Clerk, a
// database, nothing at all for app-owned random keys). The rotation engine
// calls Mint to obtain a new credential when nothing is pre-staged, Test
// before anything is accepted or promoted, and Revoke once a key's grace
// period is over. Capabilities that only some providers have are optional
// interfaces ([PromoteChecker], [Preparer], [Recoverer],
// [IdempotentMinter]) the engine type-asserts.
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
// A mint changes the world outside rotor: the issuer now holds a credential
// whose value only the answer carries. A run that dies after the issuer
// answered and before the value was saved would leave a working key that
// nobody knows about, or, for an issuer whose mint is a rotate call (Clerk
// machine keys), lose the new key while the old one expires. So the engine
// saves an intent with a request id ([MintRequest].RequestID) before it
// calls Mint, and the value after; a run that finds the intent without the
// value reconciles, in this order of preference:
//
//   - [Recoverer]: Recover asks the issuer for the credential minted for
//     the request (Clerk machine keys: the machine's key, if it is no
//     longer the current one). It answers [ErrNotMinted] when there is
//     none, and the engine mints with the same request id.
//   - [IdempotentMinter]: Mint is idempotent on RequestID (the same id
//     returns the same credential and mints nothing new), so the engine
//     calls it again. The exec provider's protocol (version 2) requires
//     this of its commands.
//   - neither: the engine cannot know whether a key was created. It records
//     a possibly orphaned key ([store.Orphan]) in the secret, shown by
//     `rotor status` and written to the audit log with what the operator
//     must check at the issuer, and mints again with a new request id.
//
// A provider with no issuer (random bytes the application owns) creates
// nothing outside rotor: its Recover always answers ErrNotMinted.
//
// A provider whose mint changes the issuer in a way that cannot be looked
// up afterwards (a database password is set, never read back) implements
// [Preparer] instead: Prepare picks the new value with no side effect, the
// engine saves it as the pending key, and only then does Apply make the
// issuer accept it. A run that dies at any point leaves the value in the
// store, and the next run applies the same value again instead of losing it.
//
// Revoke needs no intent of its own: it is idempotent, and the engine marks
// the key [store.KeyRevoking] before calling it, so a run that dies in
// between revokes it again.
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
	// ErrNotMinted means no credential was created: [Recoverer.Recover]
	// found none for the request, or Mint failed before the issuer could
	// create one. A Mint error that does not wrap it (nor ErrCannotMint)
	// leaves the outcome unknown.
	ErrNotMinted = errors.New("no credential was minted")
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

// MetaReplacedKeyTTL is the [Credential].Meta entry (whole seconds) by
// which a provider whose mint starts a deletion delay at the issuer says
// how long the issuer keeps the replaced key (the request's Current)
// valid. When the engine promotes the credential it records the deadline on
// the replaced key as [store.MetaIssuerExpiresAt], which status shows,
// rollback warns about and the schedule rotates before.
const MetaReplacedKeyTTL = "replaced_key_ttl"

// MintRequest carries what a provider may need to mint.
type MintRequest struct {
	Secret  string        // the managed secret's name
	Current *store.Key    // the key being replaced; nil on first issue
	Grace   time.Duration // how long the replaced key must stay valid
	// Previous is the key current replaced, while it is still within its
	// grace period; nil when there is none or it has expired. A provider
	// that reuses issuer-side accounts must not take the one it serves.
	Previous *store.Key
	// RequestID identifies this mint. It is saved before Mint is called
	// and is the same when the engine calls Mint or Recover again for the
	// same intent (see [IdempotentMinter], [Recoverer]). Safe to show.
	RequestID string
	// RequestedAt is when the intent was saved: an issuer's credentials
	// created before it cannot be the one this request minted.
	RequestedAt time.Time
	// Initiator is who started the rotation, as the audit log names it
	// (e.g. "ci:github:org/app:rotate.yml#42", "user:alice"). Safe to show;
	// an issuer that keeps a reason for its own audit trail may carry it.
	Initiator string
}

// Provider is the contract every credential provider implements.
type Provider interface {
	// Mint creates a new credential. Providers that cannot (Clerk instance
	// keys) return an *ActionRequiredError. An error wrapping
	// [ErrNotMinted] says the issuer definitely created nothing; any
	// other error leaves that unknown (see "Intent before side effect").
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

// Recoverer is implemented by providers that can ask their issuer for the
// credential a Mint created, after a run died before saving its answer.
//
// Recover returns the credential req.RequestID minted, or an error
// wrapping [ErrNotMinted] when the issuer definitely holds none (the
// engine then mints with the same request). Any other error means the
// issuer could not be asked; the engine keeps the intent and tries again
// on the next run. Recover must not change the issuer.
type Recoverer interface {
	Recover(ctx context.Context, req MintRequest) (Credential, error)
}

// IdempotentMinter is implemented by providers whose Mint is idempotent on
// [MintRequest].RequestID when IdempotentMint reports true: a second Mint
// with a request id already answered returns the same credential and
// creates nothing at the issuer. The engine then repeats Mint to learn the
// value of an interrupted one.
type IdempotentMinter interface {
	IdempotentMint() bool
}
