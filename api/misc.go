package api

import "time"

// Get is the document of `rotor get -o json`. Value is the one
// place a key value appears in any document, and only with --reveal.
type Get struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// Slot is current, previous, next or pending.
	Slot string `json:"slot"`
	// KeyID is the id of the key in the slot.
	KeyID string `json:"key_id"`
	// Value is the key itself, only with --reveal (audited); absent
	// otherwise.
	Value string `json:"value,omitempty"`
}

// History is the document of `rotor history -o json`: the Vault KV
// versions of a secret, oldest first.
type History struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// Versions are the versions Vault keeps.
	Versions []HistoryVersion `json:"versions"`
}

// HistoryVersion is one KV version of a secret.
type HistoryVersion struct {
	// Version is the KV version.
	Version string `json:"version"`
	// CreatedAt is when Vault stored it.
	CreatedAt time.Time `json:"created_at"`
	// WrittenBy is who wrote it; "" when unknown.
	WrittenBy string `json:"written_by"`
	// The key ids in each slot at this version; "" for an empty slot.
	CurrentKeyID  string `json:"current_key_id"`
	PreviousKeyID string `json:"previous_key_id"`
	NextKeyID     string `json:"next_key_id"`
	PendingKeyID  string `json:"pending_key_id"`
	// Step is the last completed step of the rotation in progress at
	// this version; "" when none was.
	Step string `json:"step"`
	// Deleted and Destroyed versions have no readable data.
	Deleted   bool `json:"deleted"`
	Destroyed bool `json:"destroyed"`
}

// Policy is the document of `rotor policy aws|vault|postgres -o json`.
type Policy struct {
	// Target is aws, vault or postgres.
	Target string `json:"target"`
	// Role is the rotor role (aws, vault) or the PostgreSQL login role
	// (postgres) the policy is for.
	Role string `json:"role"`
	// Format is the policy's language: json (IAM), hcl (Vault), sql.
	Format string `json:"format"`
	// Policy is the policy text, as the text form prints it.
	Policy string `json:"policy"`
}

// Init is the document of `rotor init -o json`.
type Init struct {
	// Config is the path of rotor.yaml.
	Config string `json:"config"`
	// WroteConfig is true when init wrote it; false when it existed.
	WroteConfig bool `json:"wrote_config"`
	// Created lists what init created, one phrase each ("store
	// .rotor/store", "audit salt .rotor/audit.salt (0600)").
	Created []string `json:"created"`
}

// Token is the document of `rotor token new -o json` and (hash only)
// `rotor token hash -o json`. A new token is a credential for rotor's
// API, not a managed key: it is shown once, here, and stored nowhere.
type Token struct {
	// Token is the new token; absent from token hash.
	Token string `json:"token,omitempty"`
	// Hash is its sha256 hash, for server.tokens in rotor.yaml.
	Hash string `json:"hash"`
}
