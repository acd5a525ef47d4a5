// Package postgres rotates PostgreSQL passwords. The managed value is a
// connection URL, postgres://ROLE:PASSWORD@host:port/db?…, so the
// DATABASE_URL, DATABASE_URL_PRIMARY and DATABASE_URL_SECONDARY that
// `rotor run` injects work with any driver.
//
// # Strategies
//
// [AlternatingUsers] (the default, zero downtime) keeps two login roles per
// secret, e.g. app_a and app_b, both members of a group role that holds
// the privileges. A rotation sets a fresh password on the role that is not
// current and promotes it; the previous role keeps its password through
// the grace period, then revoke gives it an unknown random password and/or
// NOLOGIN ([RevokeMode]) and, optionally, terminates its sessions. This is
// the strategy AWS documents as "alternating users". A rotation that would
// take the role still serving an unexpired previous key is refused: revoke
// it first.
//
// [SingleUser] changes the password of one role. The database accepts one
// password per role, so the old one stops working at once: there is no
// grace period at the database, [Options.Warning] says so at load time and in
// status, and the reload and verify steps carry the whole zero-downtime
// burden.
//
// # Crash safety
//
// The provider is a [provider.Preparer]: Prepare picks the role and
// generates the password without touching the database, the engine saves
// that value as pending, and only then does Apply run ALTER ROLE. A run
// killed in between, or right after ALTER ROLE, is resumed by applying the
// same value again, which is idempotent. Revoke acts only while the role
// still accepts the revoked key (it logs in with it to find out), under an
// advisory lock that Apply takes too, so it is idempotent and never locks
// a role a later rotation reused. One case it cannot repair: with revoke
// mode password (no NOLOGIN), a revoke killed after the password change and
// before terminating the sessions leaves them to end on their own.
//
// # SQL
//
// No SQL is built by concatenating names or passwords. ALTER ROLE and
// CREATE ROLE take no bind parameters, so the provider has PostgreSQL's
// format() quote the role names (%I) and the password (%L), passed to it
// as bind parameters. The password itself never reaches the server: rotor
// sends its SCRAM-SHA-256 verifier, as psql's \password does, so it cannot
// appear in the server's statement log.
//
// # Passwords
//
// Passwords are PasswordLength characters drawn uniformly with crypto/rand
// from PasswordAlphabet (default: the 62 ASCII letters and digits, 32
// characters, about 190 bits); [Options.Validate] refuses fewer than
// [MinPasswordBits] bits and characters that SCRAM clients would normalise
// differently.
//
// # Admin connection
//
// The provider's own connection comes from an environment variable
// (AdminURLEnv) or from the current value of another rotor-managed secret
// (AdminSecret), never from rotor.yaml. It needs no superuser: [Policy]
// prints the grants per PostgreSQL version. A statement the server refuses
// (permission denied, unknown role) changes nothing, and the rotation ends
// with nothing changed ([provider.ErrNotApplied]).
package postgres
