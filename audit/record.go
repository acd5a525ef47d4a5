package audit

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/keyring/keyid"
)

// Statuses of an audit event.
const (
	StatusStarted   = "started"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusDenied    = "denied"
)

// GenesisHash is the prev_hash of the first record of every log.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// maxLineSize bounds one encoded record, newline included. Readers refuse
// longer lines, so a damaged or hostile log cannot make them buffer without
// limit; Append refuses events that would not fit.
const maxLineSize = 64 << 10

// hashHexLen is the length of a hex-encoded HMAC-SHA256.
const hashHexLen = 2 * sha256.Size

// Domain tags keep record hashes and anchor MACs, which share the salt, from
// ever being valid for one another.
const (
	recordDomain   = "rotor-audit-record-v1"
	recordDomainV2 = "rotor-audit-record-v2"
	anchorDomain   = "rotor-audit-anchor-v1"
)

// Event is what a caller reports: who did what to which secret, and how it
// went. KeyID is a key id from package keyid, never a secret value.
type Event struct {
	// Initiator is who caused the event: [InitiatorSystem], "user:<name>",
	// a CI identity; see [DetectInitiator].
	Initiator string `json:"initiator"`
	// Action names what happened, e.g. "rotate.promote" or "revoke".
	Action string `json:"action"`
	// Secret is the name of the managed secret, empty when none applies.
	Secret string `json:"secret"`
	// KeyID is the id of the key concerned, empty when none applies.
	KeyID string `json:"key_id"`
	// Status is one of StatusStarted, StatusSucceeded, StatusFailed and
	// StatusDenied.
	Status string `json:"status"`
	// Detail is free text for humans; it must not contain secret values.
	Detail string `json:"detail"`
	// StoreVersion and StateDigest, set together or not at all, record a
	// save of Secret: the save count the stored secret carries after it
	// and a keyed digest of the state saved (see package binding). An
	// event with them is written as a version 2 record.
	StoreVersion uint64 `json:"store_version,omitempty"`
	StateDigest  string `json:"state_digest,omitempty"`
}

// binds reports whether e records a save of its secret: whether it is
// written as a version 2 record.
func (e *Event) binds() bool { return e.StoreVersion != 0 || e.StateDigest != "" }

// Record is one line of the audit log: an [Event] with its place in the
// hash chain.
type Record struct {
	// Seq numbers the records of a log from 1 without gaps.
	Seq uint64 `json:"seq"`
	// Timestamp is when the record was appended, in UTC.
	Timestamp time.Time `json:"timestamp"`
	Event
	// PrevHash is the Hash of the record before, or GenesisHash.
	PrevHash string `json:"prev_hash"`
	// Hash chains this record to PrevHash under the deployment's salt.
	Hash string `json:"hash"`
}

// wireRecord fixes the order and form of the fields on disk.
type wireRecord struct {
	Seq       uint64 `json:"seq"`
	Timestamp string `json:"timestamp"`
	Initiator string `json:"initiator"`
	Action    string `json:"action"`
	Secret    string `json:"secret"`
	KeyID     string `json:"key_id"`
	Status    string `json:"status"`
	Detail    string `json:"detail"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
}

// wireRecordV2 is wireRecord with the fields of a save (version 2).
type wireRecordV2 struct {
	Seq          uint64 `json:"seq"`
	Timestamp    string `json:"timestamp"`
	Initiator    string `json:"initiator"`
	Action       string `json:"action"`
	Secret       string `json:"secret"`
	KeyID        string `json:"key_id"`
	Status       string `json:"status"`
	Detail       string `json:"detail"`
	StoreVersion uint64 `json:"store_version"`
	StateDigest  string `json:"state_digest"`
	PrevHash     string `json:"prev_hash"`
	Hash         string `json:"hash"`
}

func formatTimestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// nextTimestamp is the timestamp of a record appended at now after a
// record dated prev: now, or prev when the clock is behind it. Timestamps
// thus never go backwards along a chain, though the processes and
// machines that append to it have clocks that differ a little, and the
// verifier can refuse every record dated before the one it follows.
func nextTimestamp(now, prev time.Time) time.Time {
	if now = now.UTC(); now.Before(prev) {
		return prev
	}
	return now
}

// encodeRecord returns r as one JSON line, newline included.
func encodeRecord(r Record) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Details are read by humans; "<" is clearer than "\u003c".
	enc.SetEscapeHTML(false)
	var w any = wireRecord{
		Seq:       r.Seq,
		Timestamp: formatTimestamp(r.Timestamp),
		Initiator: r.Initiator,
		Action:    r.Action,
		Secret:    r.Secret,
		KeyID:     r.KeyID,
		Status:    r.Status,
		Detail:    r.Detail,
		PrevHash:  r.PrevHash,
		Hash:      r.Hash,
	}
	if r.binds() {
		w = wireRecordV2{
			Seq:          r.Seq,
			Timestamp:    formatTimestamp(r.Timestamp),
			Initiator:    r.Initiator,
			Action:       r.Action,
			Secret:       r.Secret,
			KeyID:        r.KeyID,
			Status:       r.Status,
			Detail:       r.Detail,
			StoreVersion: r.StoreVersion,
			StateDigest:  r.StateDigest,
			PrevHash:     r.PrevHash,
			Hash:         r.Hash,
		}
	}
	err := enc.Encode(w)
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	return buf.Bytes(), nil
}

// recordHash computes the chain hash of r (r.Hash itself is not input).
func recordHash(salt []byte, r *Record) string {
	m := hmac.New(sha256.New, salt)
	m.Write([]byte(r.PrevHash))
	writeCanonical(m, canonicalFields(r)...)
	return hex.EncodeToString(m.Sum(nil))
}

// canonicalFields lists what the hash of r covers, in order: a version 2
// record has a domain of its own and its two fields after detail.
func canonicalFields(r *Record) []string {
	if r.binds() {
		return []string{recordDomainV2, strconv.FormatUint(r.Seq, 10), formatTimestamp(r.Timestamp),
			r.Initiator, r.Action, r.Secret, r.KeyID, r.Status, r.Detail,
			strconv.FormatUint(r.StoreVersion, 10), r.StateDigest, r.PrevHash}
	}
	return []string{recordDomain, strconv.FormatUint(r.Seq, 10), formatTimestamp(r.Timestamp),
		r.Initiator, r.Action, r.Secret, r.KeyID, r.Status, r.Detail, r.PrevHash}
}

// writeCanonical writes each field preceded by its length as an 8-byte
// big-endian integer, so no two different field lists encode alike and the
// encoding does not depend on how JSON escapes strings.
func writeCanonical(h hash.Hash, fields ...string) {
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
}

// hashEqual compares two hex hashes in constant time.
func hashEqual(a, b string) bool { return hmac.Equal([]byte(a), []byte(b)) }

// validate checks the fields an event must have. Messages never repeat a
// field's value: a caller who passed a secret by mistake must not see it
// printed.
func (e *Event) validate() error {
	switch {
	case e.Initiator == "":
		return errors.New("initiator is empty")
	case e.Action == "":
		return errors.New("action is empty")
	case !validStatus(e.Status):
		return errors.New("status is not one of started, succeeded, failed, denied")
	case e.KeyID != "" && !isLowerHex(e.KeyID, keyid.Len):
		return fmt.Errorf("key_id is not a key id (want %d lowercase hex characters)", keyid.Len)
	}
	return e.validateSave()
}

// validateSave checks the fields of a save: both or neither, a version
// from 1 and a hex digest, for a secret.
func (e *Event) validateSave() error {
	switch {
	case !e.binds():
		return nil
	case e.StoreVersion == 0:
		return errors.New("store_version is 0 while state_digest is set")
	case !isLowerHex(e.StateDigest, hashHexLen):
		return fmt.Errorf("state_digest is not %d lowercase hex characters", hashHexLen)
	case e.Secret == "":
		return errors.New("store_version is set but secret is empty")
	}
	return nil
}

// sanitize replaces invalid UTF-8, which JSON cannot carry, the way the
// encoder would, so the record Append returns is the one it wrote.
func (e *Event) sanitize() {
	for _, s := range []*string{&e.Initiator, &e.Action, &e.Secret, &e.KeyID, &e.Status, &e.Detail, &e.StateDigest} {
		*s = strings.ToValidUTF8(*s, "\uFFFD")
	}
}

func validStatus(s string) bool {
	switch s {
	case StatusStarted, StatusSucceeded, StatusFailed, StatusDenied:
		return true
	}
	return false
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ParseRecord parses one line of an audit log, with or without its trailing
// newline. It is strict, because the log is untrusted input: the line must
// be a single JSON object holding exactly the record's fields, each once and
// of the right type, with valid values (a canonical RFC 3339 UTC timestamp,
// a known status, a key id or nothing in key_id, hex hashes). ParseRecord
// does not check the hash; [Log.Verify] does.
func ParseRecord(line []byte) (Record, error) {
	r, err := parseRecord(line)
	if err != nil {
		return Record{}, fmt.Errorf("parse audit record: %w", err)
	}
	return r, nil
}

func parseRecord(line []byte) (Record, error) {
	var (
		d decoder
		r rawRecord
	)
	if err := d.decode(line, &r); err != nil {
		return Record{}, err
	}
	return r.record(), nil
}
