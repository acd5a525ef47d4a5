// Package vault implements [store.Store] on a HashiCorp Vault KV v2 secrets
// engine.
//
// # Layout
//
// Each managed secret is one KV v2 secret at <mount>/data/<prefix>/<name>
// that holds every slot and the rotation state, so each transition of the
// rotation state machine is a single check-and-set write and readers always
// see a consistent set. A version of it carries these fields:
//
//	current              value of the current key
//	current_key_id       its key id
//	previous             value of the previous key, if any
//	previous_key_id      its key id
//	previous_expires_at  end of previous's grace period (RFC 3339), if any
//	written_by           who wrote this version (see below)
//	rotor_format         layout version, "1"
//	rotor                the full [store.Secret] as JSON: the record rotor
//	                     reads back; the other fields are a projection of it
//
// Consumers that are not rotor (Vault Agent templates, External Secrets,
// a plain `vault kv get -field=current`) read the flat fields. Vault ACLs
// apply to paths, not fields: a token that may read the secret reads all
// of it, including next and pending. Keep staged keys out of reach of apps
// by giving apps their own token with the [Policy] for role app, and
// nothing more privileged.
//
// # Versions and compare-and-swap
//
// A [store.Version] is the KV version number as a decimal string. Save
// with [store.NoVersion] writes with cas=0 (create only); otherwise with
// cas=<version>. Vault refuses a stale cas with HTTP 400, which Save
// reports as an error wrapping [store.ErrConflict]. A secret whose latest
// version was deleted or destroyed is not found by Load and may be created
// again with NoVersion; older versions stay in the KV history. (A Save
// that expects the deleted version still succeeds: it is the KV's current
// version, and no other write happened in between.)
//
// # Requests
//
// Load is one KV read; Save one KV write and one metadata patch (see
// below). The client keeps up to [IdleConns] connections open between
// requests, so parallel rotations reuse them instead of opening one per
// request; the shared audit chain (package audit/vaultchain) uses the same
// client.
//
// # Metadata: what viewers see
//
// The store describes the versions it writes in the secret's KV metadata
// (one JSON merge patch per write, or per operation; see below): max_versions ([Options].MaxVersions, default
// [DefaultMaxVersions], so that the history covers at least ten
// rotations) and custom_metadata describing the secret without a single
// value: rotor_version (the version described), rotor_state (the secret's
// key ids, times, retired keys and rotation in progress as JSON, split
// into rotor_state_1… past 512 bytes) and rotor_v<N> (version N's key ids,
// step and writer, for the last 50 versions). A token that reads metadata
// but no values (the viewer policy) gets status from [Store.Describe] and
// history from [Store.History]. The patch follows the data write. The
// versions written while an operation holds the secret (a rotation's
// start, create, promote…) are described together, by the patch of the
// write that ends the operation or releases its lease, by one made a
// second after the first of them, or by [Store.Close], whichever comes
// first: a rotation of a few milliseconds costs one patch, not one per
// version. If the patch fails (a token without the patch capability, a
// crash before it) the description lags until the next write, which is
// logged, and the versions it would have described have no history line.
//
// # History and written_by
//
// KV versions are the history of a secret; [Store.History] lists them with
// the key ids each version held. Every version records in written_by who
// wrote it: the identity set with [WithWriter] if any, else the initiator
// of the rotation in progress, else the Vault token's display name
// ("vault:approle", "vault:jwt-repo:org/app:ref:refs/heads/main", ...).
// Vault's own audit device remains the authoritative record of who called
// the API.
//
// # Authentication
//
// [New] logs in with the method configured in [AuthOptions]: a token
// (token file, $VAULT_TOKEN, or the Vault CLI's ~/.vault-token), AppRole, JWT (a JWT file, or a GitHub
// Actions OIDC ID token) or Kubernetes (the pod's service-account token).
// It keeps the resulting token alive in the background, renewing it and
// logging in again when it reaches its maximum TTL, until [Store.Close].
// A failed login tells the two causes an operator fixes differently: a
// Vault that gave no answer is an [*UnreachableError]; a Vault that
// refused the credentials (HTTP 400, 401, 403) wraps [ErrAuthRejected].
// [Store.ServerTime] reads Vault's clock (its HTTP Date header) for
// measuring skew.
//
// # Policies
//
// [Policy] prints least-privilege ACL policies for the roles admin, ci,
// app and viewer; the package tests load them into a real Vault and check
// every role against every action.
package vault
