package api

// Error codes. They are stable: clients and scripts may switch on them.
// The API answers with the codes whose comment gives a status; the CLI's
// error document (see [ErrorBody]) uses the same code for the same
// failure, and a few of its own, marked "CLI".
const (
	CodeBadRequest         = "bad_request"          // 400: malformed request, unknown field, invalid name
	CodeUnauthenticated    = "unauthenticated"      // 401: no, unknown, expired or forged credential
	CodeForbidden          = "forbidden"            // 403: the caller's role does not allow this
	CodeTLSRequired        = "tls_required"         // 403: secret values only travel over TLS (or loopback)
	CodeNotFound           = "not_found"            // 404: no such secret (or endpoint)
	CodeMethodNotAllowed   = "method_not_allowed"   // 405
	CodeRotationInProgress = "rotation_in_progress" // 409: another rotator holds the lease
	CodeNothingToRollBack  = "nothing_to_roll_back" // 409: previous is empty, revoked or expired
	CodeNotExpired         = "not_expired"          // 409: revoke without force inside the grace period
	CodeKeyInUse           = "key_in_use"           // 409: consumers still use the key to revoke
	CodeSameKey            = "same_key"             // 409: the staged value is already in use
	CodeActionRequired     = "action_required"      // 409: an operator must act (e.g. in the Clerk dashboard)
	CodeConflict           = "conflict"             // 409: the secret changed concurrently; retry
	CodeNoRotation         = "no_rotation"          // 409: no rotation in progress
	CodeTooLarge           = "request_too_large"    // 413
	CodeTooManyRequests    = "too_many_requests"    // 429: too many refused requests from this caller; see Retry-After
	CodeKeyRejected        = "key_rejected"         // 422: the new key failed its test at its issuer
	CodeInternal           = "internal"             // 500
	CodeRolledBack         = "rolled_back"          // 502: verification failed after promote; rolled back
	CodeNotReady           = "not_ready"            // 503: the store does not answer
	CodeTimeout            = "timeout"              // 504: the operation did not finish in time

	CodeUsage          = "usage"           // CLI (exit 2): rotor was called wrongly
	CodeAuditBroken    = "audit_broken"    // CLI (exit 5): the audit chain was tampered with
	CodeDoctorProblems = "doctor_problems" // CLI (exit 8): rotor doctor found a problem
	CodeError          = "error"           // CLI (exit 1): any other failure
)

// ErrorBody is the document of every failure: the body of every API error
// response, and the last line a command run with -o json prints on stderr
// when it fails:
//
//	{"error":{"code":"rotation_in_progress","message":"…","exit_code":3}}
type ErrorBody struct {
	// Error says what failed.
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an [ErrorBody].
type ErrorDetail struct {
	// Code is one of the Code… constants.
	Code string `json:"code"`
	// Message is for humans. It never contains a secret value.
	Message string `json:"message"`
	// Steps, for action_required, says what the operator must do.
	Steps []string `json:"steps,omitempty"`
	// Hint, from the CLI, says how to go on; absent when there is none.
	Hint string `json:"hint,omitempty"`
	// ExitCode, from the CLI, is the code rotor exits with (see README
	// "Exit codes"); absent from API responses.
	ExitCode int `json:"exit_code,omitempty"`
}
