package api

import (
	"time"

	"github.com/rotor-dev/rotor/audit"
)

// Audit is the answer of GET /v1/audit: audit records, oldest first.
// `rotor audit tail -o json` prints the same records as JSON Lines, one
// record per line, like the audit log itself, so that a long tail can be
// streamed through jq.
type Audit struct {
	// Records are the records.
	Records []audit.Record `json:"records"`
}

// AuditVerify is the document of `rotor audit verify -o json`. A broken
// chain is a failure: the command prints the error document instead and
// exits 5.
type AuditVerify struct {
	// OK is true: the chain verified.
	OK bool `json:"ok"`
	// Chain says which chain was verified: "file" (the local log) or
	// where the shared chain lives.
	Chain string `json:"chain"`
	// Records counts the records checked.
	Records uint64 `json:"records"`
	// Head is the hash of the last record.
	Head string `json:"head"`
	// StoreSecrets counts the stored secrets found to match the chain
	// (a store file replayed from a backup does not).
	StoreSecrets int `json:"store_secrets"`
	// OpenOperations, with --open, are the operations that have records
	// but no terminal one; [] without --open.
	OpenOperations []OpenOperation `json:"open_operations"`
}

// OpenOperation is an operation without a terminal audit record: still
// running, or interrupted and not yet resumed.
type OpenOperation struct {
	// Secret is the secret it is about.
	Secret string `json:"secret"`
	// ID is the operation's id.
	ID string `json:"id"`
	// Action, StartedSeq, StartedAt and Initiator are those of its first
	// record.
	Action     string    `json:"action"`
	StartedSeq uint64    `json:"started_seq"`
	StartedAt  time.Time `json:"started_at"`
	Initiator  string    `json:"initiator"`
	// LastSeq, LastAction and LastStatus are those of its last record.
	LastSeq    uint64 `json:"last_seq"`
	LastAction string `json:"last_action"`
	LastStatus string `json:"last_status"`
}

// AuditInit is the document of `rotor audit init -o json`.
type AuditInit struct {
	// Chain is where the audit chain lives: "file" (the local log),
	// "vault" or "dynamodb".
	Chain string `json:"chain"`
	// Table is the DynamoDB table, "" for the other chains.
	Table string `json:"table"`
	// Created is true when init created the table now.
	Created bool `json:"created"`
}

// AuditImport is the document of `rotor audit import -o json`.
type AuditImport struct {
	// From is the local log that was imported.
	From string `json:"from"`
	// Records counts its records.
	Records uint64 `json:"records"`
	// FirstSeq and LastSeq are the seqs the imported records got in the
	// shared chain.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// LinkSeq is the seq of the audit.import record naming OldHead.
	LinkSeq uint64 `json:"link_seq"`
	// OldHead is the hash of the local log's last record.
	OldHead string `json:"old_head"`
}
