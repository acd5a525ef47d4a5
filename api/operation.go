package api

import "time"

// Result is what a finished rotation or rollback did: the document of
// `rotor rollback -o json`, the answer of POST /v1/secrets/{name}/rotate
// and …/rollback, and, with an outcome, one entry of [RotateRun].
type Result struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// OperationID is the operation's id, as in the audit records.
	OperationID string `json:"operation_id"`
	// Kind is what ran: "rotate", or "rollback" (a rollback, an abort
	// after promote, or an interrupted rollback a rotate resumed).
	Kind string `json:"kind"`
	// Resumed is true when the operation was taken over from an earlier,
	// interrupted run.
	Resumed bool `json:"resumed"`
	// CurrentKeyID is the key id of current afterwards.
	CurrentKeyID string `json:"current_key_id"`
	// PreviousKeyID is the key id of previous afterwards; "" when none.
	PreviousKeyID string `json:"previous_key_id"`
}

// The outcomes of a [RotateItem].
const (
	OutcomeRotated = "rotated" // the rotation (or a resumed rollback) finished
	OutcomeAborted = "aborted" // rotate --abort unwound the rotation
	OutcomeNotDue  = "not_due" // rotate --due skipped a secret that is not due
	OutcomeDryRun  = "dry_run" // rotate --dry-run: plan says what would happen
	OutcomeFailed  = "failed"  // error says why; see the exit code
)

// RotateRun is the document of `rotor rotate -o json`: one entry per
// secret, in the order they were named (NAME, or every configured secret
// with --due and --all).
type RotateRun struct {
	// Secrets are the entries.
	Secrets []RotateItem `json:"secrets"`
}

// RotateItem is what a rotate did to one secret. The fields of [Result]
// are set for the outcomes rotated and aborted, and Secret always.
type RotateItem struct {
	// Outcome is one of rotated, aborted, not_due, dry_run, failed.
	Outcome string `json:"outcome"`
	Result
	// NextRotationAt is, for not_due, when the secret is due; null
	// otherwise.
	NextRotationAt *time.Time `json:"next_rotation_at"`
	// Plan is, for dry_run, what a rotation would do, as the text output
	// says it; "" otherwise.
	Plan string `json:"plan"`
	// Steps is, for dry_run, the plan step by step; [] otherwise (and
	// when the rotation would stop before its first step: see Error).
	Steps []PlanStep `json:"steps"`
	// Error is, for failed, why; null otherwise.
	Error *ErrorDetail `json:"error"`
}

// DryRun is the document of `rotor rollback --dry-run -o json` and
// `rotor revoke --dry-run -o json`: per secret, what the operation would
// do, or why it would refuse. Nothing was changed.
type DryRun struct {
	// Operation is rollback or revoke.
	Operation string `json:"operation"`
	// Secrets are the entries, in the order they were named (every
	// configured secret with --expired).
	Secrets []DryRunItem `json:"secrets"`
}

// DryRunItem is what an operation would do to one secret.
type DryRunItem struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// Plan is what the operation would do, as the text output says it,
	// one line per step; "" when it would refuse before any step.
	Plan string `json:"plan"`
	// Steps is the plan step by step; [] when it would refuse before any
	// step, or has nothing to do.
	Steps []PlanStep `json:"steps"`
	// Error is why the operation would refuse; null when it would run.
	Error *ErrorDetail `json:"error"`
}

// The names of a [PlanStep]: the steps of a rotation or rollback as the
// audit log and status name them (create … finish), and those only a
// plan has.
const (
	PlanCreate            = "create"               // a key becomes pending: a staged key, or one the provider mints
	PlanTest              = "test"                 // the issuer is asked whether it accepts the key
	PlanPromote           = "promote"              // the key becomes current; the current key moves aside
	PlanReload            = "reload"               // the reload hooks run
	PlanVerify            = "verify"               // the verify checks run, and consumers report the key they use
	PlanFinish            = "finish"               // the operation is recorded as done
	PlanRollBackOnFailure = "roll_back_on_failure" // what a failed reload or verify would restore
	PlanResume            = "resume"               // an interrupted operation of the same kind is taken over
	PlanFinishInterrupted = "finish_interrupted"   // an interrupted operation of another kind is finished first
	PlanRevoke            = "revoke"               // a key is revoked at its issuer
	PlanSkip              = "skip"                 // a key is left alone (revoke --expired: still within grace)
)

// PlanStep is one step of a dry run's plan.
type PlanStep struct {
	// Name is one of the Plan… names.
	Name string `json:"name"`
	// Action says, for a human, what the step would do (the text output
	// says the same).
	Action string `json:"action"`
	// KeyIDs are the ids of the existing keys the step acts on (for
	// promote: the key that becomes current, then the one it replaces);
	// [] when it acts on none, or on a key the provider has yet to mint.
	KeyIDs []string `json:"key_ids"`
}

// Staged is the document of `rotor stage -o json` and the answer of
// POST /v1/secrets/{name}/stage: the staged key's id, never its value.
type Staged struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// KeyID is the id of the key now in the next slot.
	KeyID string `json:"key_id"`
}

// Revoked is what a revoke did to one secret: the answer of
// POST /v1/secrets/{name}/revoke and one entry of [RevokeRun].
type Revoked struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// Revoked are the ids of the keys revoked at the issuer and cleared.
	Revoked []string `json:"revoked"`
	// Waiting are the ids of keys skipped (revoke --expired) because
	// their grace period has not ended.
	Waiting []string `json:"waiting"`
}

// RevokeRun is the document of `rotor revoke -o json`: one entry per
// secret (NAME, or every configured secret with --expired).
type RevokeRun struct {
	// Secrets are the entries.
	Secrets []RevokeItem `json:"secrets"`
}

// RevokeItem is one entry of [RevokeRun].
type RevokeItem struct {
	Revoked
	// Error says why the revoke of this secret failed; null when it did
	// not.
	Error *ErrorDetail `json:"error"`
}

// OrphanDismissed is the document of
// `rotor revoke NAME --orphan-checked ID -o json`.
type OrphanDismissed struct {
	// Secret is the secret's name.
	Secret string `json:"secret"`
	// RequestID is the mint request whose possible orphan was dismissed.
	RequestID string `json:"request_id"`
}
