package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/internal/errclass"
	"github.com/rotor-dev/rotor/provider"
)

// Error codes of the API. They are stable: clients may switch on them.
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
)

// ErrorBody is the JSON document every error response carries:
//
//	{"error":{"code":"rotation_in_progress","message":"…"}}
type ErrorBody struct {
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
}

// maxMessageLen bounds error messages in responses.
const maxMessageLen = 2000

// statuses maps each error class (package errclass, shared with the CLI's
// exit codes) to a status and a code. An error wrapping several sentinels
// (errors.Join) gets the class errclass gives precedence.
var statuses = map[errclass.Class]struct {
	status int
	code   string
}{
	errclass.NotFound:          {http.StatusNotFound, CodeNotFound},
	errclass.InProgress:        {http.StatusConflict, CodeRotationInProgress},
	errclass.NothingToRollBack: {http.StatusConflict, CodeNothingToRollBack},
	errclass.RolledBack:        {http.StatusBadGateway, CodeRolledBack},
	errclass.KeyRejected:       {http.StatusUnprocessableEntity, CodeKeyRejected},
	errclass.SameKey:           {http.StatusConflict, CodeSameKey},
	errclass.NotExpired:        {http.StatusConflict, CodeNotExpired},
	errclass.KeyInUse:          {http.StatusConflict, CodeKeyInUse},
	errclass.ActionRequired:    {http.StatusConflict, CodeActionRequired},
	errclass.Conflict:          {http.StatusConflict, CodeConflict},
	errclass.NoRotation:        {http.StatusConflict, CodeNoRotation},
	errclass.Timeout:           {http.StatusGatewayTimeout, CodeTimeout},
}

// classify maps err to a status, a code and a message safe to show. An
// error of no class the API reports (errclass.Other, and a broken audit
// chain, which is the server's own failure) is internal: its message stays
// in the server log and the caller gets a generic one.
func classify(err error) (int, ErrorDetail) {
	s, ok := statuses[errclass.Of(err)]
	if !ok {
		return http.StatusInternalServerError, ErrorDetail{Code: CodeInternal, Message: "internal error; the server log has the details"}
	}
	d := ErrorDetail{Code: s.code, Message: clip(err.Error())}
	var ar *provider.ActionRequiredError
	if errors.As(err, &ar) {
		d.Steps = slices.Clone(ar.Steps)
	}
	return s.status, d
}

func clip(s string) string {
	if len(s) <= maxMessageLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxMessageLen], "") + "…"
}

// redact removes every occurrence of the given values from d's text. The
// engine never puts values in errors; this is the second line of defence
// for the one request that carries a value (stage).
func (d ErrorDetail) redact(values ...string) ErrorDetail {
	for _, v := range values {
		if v == "" {
			continue
		}
		d.Message = strings.ReplaceAll(d.Message, v, "[redacted]")
		for i := range d.Steps {
			d.Steps[i] = strings.ReplaceAll(d.Steps[i], v, "[redacted]")
		}
	}
	return d
}

// writeError sends d with status.
func writeError(w http.ResponseWriter, status int, d ErrorDetail) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rotor"`)
	}
	writeJSON(w, status, ErrorBody{Error: d})
}

// writeJSON sends v as the JSON body of a response with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the response"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
