// Package audit keeps rotor's audit log: an append-only chain of JSON
// lines, one per event (rotation steps, rollback, revoke, stage, denied
// attempts), chained by keyed hashes so that editing, removing, reordering
// or inserting records, and cutting off the end of the log, are detected.
// The chain lives in a local file ([Log]) or, shared by every actor of a
// deployment, in the store's trust domain ([Shared] over a [Backend]); the
// records, their encoding and the verifier are the same for both.
//
// # Record format
//
// Each line is one JSON object with exactly these fields, in this order:
//
//	{"seq":3,"timestamp":"2025-01-02T03:04:05.123456789Z","initiator":"user:ana",
//	 "action":"rotate.promote","secret":"clerk","key_id":"3f2a9c1d0b8e7f6a",
//	 "status":"succeeded","detail":"","prev_hash":"…","hash":"…"}
//
// seq counts records from 1 without gaps; timestamp is RFC 3339 with
// nanoseconds, in UTC, and never earlier than the record before's (a
// writer whose clock is behind the last record, another machine's or one
// set back, dates its record like that one); status is started, succeeded, failed or denied;
// key_id is a key id from package keyid, or empty, never a secret value;
// detail is free text and may be empty. Every field is always present.
// [ParseRecord] rejects lines that differ from this in any way.
//
// # Chain
//
// hash is the hex HMAC-SHA256, keyed with the deployment's salt, of
// prev_hash followed by the canonical encoding of the record without its
// hash: the strings "rotor-audit-record-v1", seq in decimal, timestamp,
// initiator, action, secret, key_id, status, detail and prev_hash, each
// preceded by its length in bytes as an 8-byte big-endian integer.
// prev_hash is the hash of the record before, or [GenesisHash] for the
// first record. The encoding does not depend on JSON escaping, so the
// chain can be checked by any program that has the salt.
//
// Because the chain is keyed, somebody who can edit the log but cannot read
// the salt cannot make an edited record verify, not even by recomputing
// hashes: without the salt, every hash from the edit onwards is wrong.
//
// # Anchor
//
// A chain alone does not reveal that its last records were cut off, or
// that the whole log was deleted. So the chain head, the seq and hash of
// the last record, is also kept in a separate anchor file, with an HMAC of
// its own (domain "rotor-audit-anchor-v1") so that it cannot be edited
// either. The anchor is moved forward only after the records it names are
// fsynced, so it never names a record the disk may not hold; it may lag
// the log, which verifies, and the next append brings it up to date. It is
// one 256-byte block overwritten in place, which a disk writes whole, and
// is fsynced at most once a second: after a crash of the process it is
// current, after a power failure it may lag by the records of the last
// second. Keep the anchor away from the log, where whoever can write the
// log cannot write it.
//
// # Appending
//
// Appends take an exclusive lock on <log>.lock, so any number of goroutines
// and processes may append to one log. An append reads only the end of the
// log, and refuses to extend a log whose end disagrees with the anchor,
// since overwriting the anchor would erase the evidence. Both are read
// under the lock on every commit; a [Log] skips parsing and checking again
// only the exact anchor bytes and last line it wrote or checked itself, so
// anything another process or a tamperer changed is checked in full.
//
// Appends are committed in groups: the appends that are waiting when the
// lock comes free are written together in one write, and one fsync, made
// outside the lock, makes the whole group durable while the next group is
// written. [Log.Append] returns once its record is on disk, so a record it
// returned survives a crash of the process or of the machine. A process
// killed in the middle of a write leaves at most an incomplete last line,
// which the next append discards.
//
// # Shared chain
//
// [Shared] keeps the chain in a [Backend], a two-method key-value store
// with create-only writes and compare-and-swap (Vault KV v2 in package
// audit/vaultchain, DynamoDB in audit/dynamochain; package audit/audittest
// is the suite every backend passes). Batches of record lines are created
// once under "records/<seq of the first>", so two writers continuing from
// the same record cannot both succeed and the chain cannot fork; the head,
// MACed like the anchor and naming its batch, is moved forward with
// compare-and-swap after each append and never beyond a stored record.
// Verify reads every batch from records/1 on, checks it as the log is
// checked, and checks the head as the anchor is checked. A writer stopped
// between its batch and the head leaves the head behind, which verifies;
// the next writer continues after the batch.
//
// A [Verifier] verifies a Shared chain again and again at the cost of what
// was appended since its last check: after one full verification it reads
// only the head, the batch it verified last and the new batches. A change
// to a record it verified before is left to the next full verification.
//
// # Saves
//
// [Saves] reads the version 2 records of a chain, the saves of stored
// secrets, and answers what the chain last recorded for a secret: package
// binding checks every load of the store against it. It reads the chain
// once and afterwards only what was appended since it last looked; on a
// shared chain, up to the head, taking the batches the same [Shared]
// wrote from memory, so that a load in a busy process costs one read of
// the head, shared by concurrent loads.
//
// Its first read starts from the saves checkpoint when there is one: the
// last save of every secret as of a record N, with N's seq and hash,
// MACed with the salt in its own domain "rotor-audit-checkpoint-v1" and
// kept next to the anchor (<anchor>.checkpoint) or in the backend
// (checkpoint/head, checkpoint/<n>). It is trusted only when its MAC
// checks and the chain holds record N with that hash, which pins every
// record before N; then only the records after N are read, each checked
// as always. A checkpoint whose MAC fails, or whose record N is missing
// or another, is tampering and a [*ChainError] (a chain put back from an
// older copy with a later checkpoint left in place is found this way); an
// older valid checkpoint only costs more reads. A [Saves] writes the
// checkpoint once the records it read after the last one outweigh it, so
// that a one-shot command's first load costs about the checkpoint, not
// the history. It is an optimisation, never the source of truth: Verify
// does not read it, and [Saves.Scan], the full read of `rotor audit
// verify`, reads every record and checks the checkpoint against them.
//
// # Shipping
//
// A [Shipper] copies records to a [Sink] (package audit/sinks: JSON lines,
// syslog, OTLP) from a bounded buffer in the background, retrying with backoff.
// It never blocks an append and never touches the chain: a sink that is
// down loses records, counted, once its buffer is full.
//
// # Format versions
//
// Version 1 is the format above: its hash domain is
// "rotor-audit-record-v1" and a line holds exactly the fields above.
// Version 2 records a save of a stored secret (package binding): after
// detail it has two more fields, store_version (the save count the secret
// carries after the save, a JSON integer from 1) and state_digest (a keyed
// digest of the state saved, 64 lowercase hex characters), and its hash
// covers, in its own domain "rotor-audit-record-v2", the strings of
// version 1 with store_version in decimal and state_digest inserted after
// detail. A line holds every field of version 1 and either both fields of
// version 2 or neither; rotor writes version 2 for a save and version 1
// for every other event ([Event].StoreVersion says which). Adding a field
// is a new version with a domain of its own; readers must keep accepting
// older lines, so old logs and chains verify for ever.
// (One exception: a log written before appenders kept timestamps from
// going backwards, by a machine whose clock was set back between two
// records, reports that step.)
//
// # What Verify detects
//
// [Log.Verify] reports, as a [*ChainError] wrapping [ErrChainBroken] that
// names the line where the chain broke: a record modified or forged (its
// hash does not match), records deleted, reordered or inserted (seq or
// prev_hash does not follow), a record dated before the one it follows
// (time going backwards: a bent clock, or a holder of the salt), a line
// that does not parse, the tail of the log truncated or the log deleted
// (the anchor names a record the log does not hold), a log rewritten from
// some record onwards (the anchored record's hash differs), and an anchor
// that was edited, deleted or replaced by anything but a regular file (a
// directory, a FIFO, a link to a device). A last line cut short by a crash
// is reported distinctly ([ErrIncompleteLine]); the next
// append discards it and records that it did ([ActionRecover]).
//
// # What it cannot detect
//
// Anybody who can read the salt can rewrite the log and the anchor at will,
// so the salt file must be readable by rotor alone ([LoadSalt] refuses
// looser permissions than 0600). Deleting both the log and the anchor looks
// like a deployment that never wrote a record, and putting back an older
// log together with the anchor of that time looks like a log that stopped
// there (unless the store moved on since: package binding finds a stored
// secret saved after a record the log no longer holds; or a saves
// checkpoint of a later record was left in place: [Saves] finds its record
// missing). Shipping records elsewhere as they are written (a SIEM, a
// write-once bucket) closes these gaps; this package does not. Detail is
// free text and the log cannot tell a secret pasted there from any other
// text: callers must never put secret values in an event.
package audit
