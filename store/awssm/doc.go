// Package awssm implements [store.Store] on AWS Secrets Manager, speaking
// Secrets Manager's own model: staging labels are the slots, so that AWS's
// tools and caching clients read the current credential directly.
//
// # Layout
//
// A managed secret NAME is two secrets in Secrets Manager, both under the
// configured prefix (default "rotor/"):
//
//	rotor/NAME              the secret applications read
//	rotor/NAME/rotor-state  rotor's record of it (never read by applications)
//
// Each version of rotor/NAME holds one credential, as a plain SecretString,
// and its staging labels say which slot it fills:
//
//	AWSCURRENT   current   what `aws secretsmanager get-secret-value` and the
//	                       AWS caching clients return
//	AWSPREVIOUS  previous  the key current replaced, valid until its expiry
//	AWSPENDING   pending   the new key of a rotation not yet promoted
//	ROTOR_NEXT   next      a key staged for the next rotation
//
// As in AWS's own rotation, AWSPENDING on the version that also holds
// AWSCURRENT means "no pending key": promote moves AWSCURRENT and leaves
// AWSPENDING where it is, and the next rotation moves it on.
//
// The state secret holds one JSON document (format 1) with what labels
// cannot carry: each slot's key id, creation and expiry times, source and
// Meta, keyed to the version id that holds its value, and whether it is
// being revoked; the retired keys; the operation in flight (id, kind, step,
// initiator, lease holder and expiry, intent); when the last rotation
// finished; the key the last reload gave consumers; the ids of recently
// revoked keys; possibly orphaned keys; a serial number counting saves; and the label
// layout the save left on rotor/NAME together with the layout before it.
// The document also repeats the values, because retired keys have no label
// left to keep them and versions without labels are deleted by AWS. It is
// a secret like any other (encrypted with the same KMS key) and the [Policy]
// for applications denies reading it: applications read rotor/NAME with
// AWS's own clients or with [Store.LoadLabels].
//
// Tags and the Description were the alternatives. Neither is versioned
// nor can be written conditionally, so neither gives a compare-and-swap,
// and tags are limited to 50 values of 256 characters. A second secret
// gives both, because every PutSecretValue creates a new, immutable version.
//
// # Compare-and-swap
//
// A [store.Version] names the state secret's AWSCURRENT version id, its
// serial, and a hash of rotor/NAME's label layout. Save
//
//  1. reads both secrets and refuses, with [store.ErrConflict], a version
//     that is no longer the stored one;
//  2. commits the new document to the state secret with PutSecretValue,
//     whose ClientRequestToken is derived from the version id it replaces
//     (a new secret's is random and its creation uses CreateSecret). Of two
//     writers that loaded the same version, both derive the same token but
//     write different documents (each carries a random nonce), so the
//     second gets ResourceExistsException ("you can't modify an existing
//     version"), reported as [store.ErrConflict]; a response whose version
//     is not AWSCURRENT is a conflict too. This is the
//     linearisation point, and it stays correct when a read was stale
//     (Secrets Manager is eventually consistent): a stale writer computes
//     a token that already exists and loses;
//  3. applies the new layout to rotor/NAME with the fewest calls: a new
//     value is one PutSecretValue with its labels in VersionStages; a
//     promote is one UpdateSecretVersionStage moving AWSCURRENT (AWS moves
//     AWSPREVIOUS itself); a rollback moves AWSCURRENT back, then drops
//     AWSPREVIOUS and AWSPENDING from the failed version; stage is one
//     PutSecretValue with ROTOR_NEXT; clearing previous removes its label.
//     Every label move names the version it takes the label from
//     (RemoveFromVersionId), so a move based on an outdated view fails.
//
// A writer that loses at step 2 has written nothing. New values get
// deterministic ClientRequestTokens: the pending key of rotation R is
// written as version "R-pending" when that is a valid token (32 to 64
// characters) not used before, and any other new value gets a token
// derived from the commit and its slot. Replaying step 3 — after a crash,
// or by the SDK's retryer — therefore never creates a second version.
//
// # Interrupted saves and changes made outside rotor
//
// If a writer stops between steps 2 and 3, the record is ahead of the
// labels. Load recognises that — every label is where the record's "prior"
// or "labels" layout puts it — and reports the committed record; the next
// Save completes step 3 before anything else. Until then AWS readers still
// get the old current key, which stays valid through the grace period, so
// the cost is a delay, not downtime.
//
// Any other difference between the labels and the record was made outside
// rotor, and Load reports what AWS readers see: a label moved by hand (an
// operator's `update-secret-version-stage`, a PutSecretValue from the
// console) puts that version's value in the slot, with the metadata rotor
// has for it (a value rotor never wrote gets Source [SourceExternal] and
// no key id), and a known key pushed out of every slot is reported as
// retired so that it is still revoked. The next Save makes the record
// agree. AWSPENDING or ROTOR_NEXT on a version rotor already knows is a
// stray — a promote leaves AWSPENDING on the new current, where it stays
// when AWSCURRENT is then moved by hand — and is ignored, then removed by
// the next Save.
//
// AWSPENDING on a version other than AWSCURRENT's means a rotation is in
// progress, the rule AWS's own rotation follows. When no rotor rotation is
// recorded — an AWS rotation Lambda left it, or one is running — Load
// reports a [store.Rotation] with the version id as ID, Step "create", the
// version's creation time as StartedAt, Initiator and Holder naming AWS,
// and a lease that never expires: the engine answers ErrRotationInProgress
// and never takes the rotation over; `rotor rotate NAME --abort` retires
// the pending value and removes the label.
//
// Secrets that exist in Secrets Manager without a state secret (created by
// other tools) are loaded the same way and adopted by their first Save.
//
// # Reading the version
//
// [Store.Version] tells the version Load would return without reading a
// secret value, so that a poller (rotor serve's watch reader, a keyring
// built with storesource.New) reads the values only when they moved. It
// costs two DescribeSecret calls, one per secret: the labels of
// rotor/NAME and the version id holding AWSCURRENT on the state secret.
// DescribeSecret "does not include the encrypted secret value", so unlike
// GetSecretValue it needs no KMS decrypt at AWS's side, and its quota is
// four times as high (40,000 against 10,000 requests per second; both are
// billed as API calls). The rest of a version (the document's serial and
// the layouts it records) is fixed by the state secret's version id,
// because versions are immutable: the store keeps it for the last document
// of each secret it read or wrote, and reads a document it has not seen
// once (one GetSecretValue after a save by another process).
// [LabelReader.Version] is the same for the app role's view: one
// DescribeSecret of rotor/NAME.
//
// # Residual races
//
// Secrets Manager has no multi-secret transaction, so some windows remain
// on real AWS. Step 3 moves labels one call at a time: readers of
// rotor/NAME can see a rollback half applied (AWSCURRENT moved back, the
// failed version still AWSPREVIOUS), never a wrong AWSCURRENT.
// PutSecretValue moves the labels it is given unconditionally, so a writer
// delayed between its commit and its put can re-attach AWSPENDING or
// ROTOR_NEXT after a later writer moved it; Load then treats the label as
// a stray or as a change made outside rotor, as above. A save while a
// secret has no current key cannot write pending or next values to AWS
// (Secrets Manager makes the first version AWSCURRENT): they stay in the
// record until current is set. And a secret cannot drop AWSCURRENT once it
// has one: a save without a current key leaves it where it is.
//
// # Limits
//
// Every save adds a version to the state secret. Secrets Manager keeps all
// versions of the last 24 hours plus the 100 most recent, and asks for no
// more than one PutSecretValue per secret every 10 minutes sustained. A
// rotation is about eight saves within minutes, which that absorbs;
// rotating more often than every two hours for days on end would not.
// ListSecrets, which [Store.List] uses, may lag up to five minutes behind
// changes. A document larger than 64 KiB (many unrevoked retired keys) is
// refused.
//
// # Credentials
//
// [New] uses the SDK's default chain for credentials and region (the
// environment, shared config and credentials files, SSO, web identity,
// container and instance roles), with the Region and Endpoint of
// [Options] overriding it. Retries and throttling are left to the
// SDK's standard retryer; every write is safe to retry because of its
// ClientRequestToken or its RemoveFromVersionId condition.
package awssm
