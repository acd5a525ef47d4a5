package api

import "time"

// Status is the document of `rotor status NAME -o json` and of
// GET /v1/secrets/{name}: a secret's slots by key id, the operation in
// progress, and its schedule. `rotor status -o json` without a name prints
// a JSON array of them, one per configured secret.
type Status struct {
	// Name is the secret's name.
	Name string `json:"name"`
	// Version is the store version the status was read from (the KV
	// version with Vault): it moves with every change of the secret, and
	// is the version watch events carry.
	Version string `json:"version"`
	// Provider is the provider that mints, tests and revokes its keys
	// (clerk, random, exec, …).
	Provider string `json:"provider"`
	// Current is the key in use; null before the first rotation.
	Current *Key `json:"current"`
	// Previous is the key that was current before, valid until its
	// expires_at; null when there is none.
	Previous *Key `json:"previous"`
	// Next is a staged key the next rotation promotes; null when none.
	Next *Key `json:"next"`
	// Pending is the new key of a rotation in progress; null otherwise.
	Pending *Key `json:"pending"`
	// Retired are keys set aside (by rollbacks) that wait to be revoked.
	Retired []Key `json:"retired"`
	// Rotation is the operation in progress; null when none.
	Rotation *Operation `json:"rotation"`
	// LastRotatedAt is when the last rotation finished; null before one.
	LastRotatedAt *time.Time `json:"last_rotated_at"`
	// NextRotationAt is when the schedule makes the secret due; null when
	// it has no schedule.
	NextRotationAt *time.Time `json:"next_rotation_at"`
	// Due is true when a rotation is due now.
	Due bool `json:"due"`
	// ReloadedKeyID is the key the last completed reload gave consumers;
	// it is not revoked until a later reload completes. "" when unknown.
	ReloadedKeyID string `json:"reloaded_key_id"`
	// Orphans are keys interrupted mints may have left at the issuer.
	Orphans []Orphan `json:"orphans"`
	// Warning says what the secret's provider cannot do (e.g. no grace
	// period at the database for postgres single_user); "" when nothing.
	Warning string `json:"warning"`
}

// Key is a key as documents show it: its id and dates, never its value.
type Key struct {
	// KeyID is the key's id (package keyring/keyid).
	KeyID string `json:"key_id"`
	// CreatedAt is when rotor stored the key.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the end of the key's grace period (previous and
	// retired keys); null when it has none.
	ExpiresAt *time.Time `json:"expires_at"`
	// Source is how the key came: "minted", "staged", or "" when not
	// recorded.
	Source string `json:"source"`
	// State is "revoking" for a key rotor decided to revoke and whose
	// issuer may already have been asked; "" otherwise.
	State string `json:"state"`
	// IssuerExpiresAt is when the issuer deletes the key on its own; null
	// when it does not.
	IssuerExpiresAt *time.Time `json:"issuer_expires_at"`
}

// Operation is an operation in progress on a secret, with its lease.
type Operation struct {
	// ID is the operation's id, as in the audit records' [op ID] detail.
	ID string `json:"id"`
	// Step is the last step recorded ("start" before the first).
	Step string `json:"step"`
	// StartedAt is when it started.
	StartedAt time.Time `json:"started_at"`
	// Initiator is who started it.
	Initiator string `json:"initiator"`
	// Holder identifies the process holding the lease.
	Holder string `json:"holder"`
	// LeaseExpiresAt is when another rotor may take it over.
	LeaseExpiresAt time.Time `json:"lease_expires_at"`
	// Kind is the operation: rotate, rollback, revoke, stage or dismiss.
	Kind string `json:"kind"`
}

// Orphan is a key an interrupted mint may have left at the issuer: what
// the operator must check there before dismissing it.
type Orphan struct {
	// RequestID is the mint request's id, for revoke --orphan-checked.
	RequestID string `json:"request_id"`
	// Operation is the id of the operation that made the request.
	Operation string `json:"operation"`
	// Action is the call that was interrupted.
	Action string `json:"action"`
	// At is when the call was made.
	At time.Time `json:"at"`
	// Check says what to look for at the issuer.
	Check string `json:"check"`
}

// List is the document of GET /v1/secrets: the names of the secrets the
// caller may see.
type List struct {
	// Secrets are the names.
	Secrets []string `json:"secrets"`
}

// Probe is the answer of GET /healthz ({"status":"ok"}) and GET /readyz
// ({"status":"ready"}).
type Probe struct {
	// Status is "ok" or "ready".
	Status string `json:"status"`
}
