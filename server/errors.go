package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/internal/errclass"
	"github.com/rotor-dev/rotor/provider"
)

// Error codes of the API (see package api, which defines them).
const (
	CodeBadRequest         = api.CodeBadRequest
	CodeUnauthenticated    = api.CodeUnauthenticated
	CodeForbidden          = api.CodeForbidden
	CodeTLSRequired        = api.CodeTLSRequired
	CodeNotFound           = api.CodeNotFound
	CodeMethodNotAllowed   = api.CodeMethodNotAllowed
	CodeRotationInProgress = api.CodeRotationInProgress
	CodeNothingToRollBack  = api.CodeNothingToRollBack
	CodeNotExpired         = api.CodeNotExpired
	CodeKeyInUse           = api.CodeKeyInUse
	CodeSameKey            = api.CodeSameKey
	CodeActionRequired     = api.CodeActionRequired
	CodeConflict           = api.CodeConflict
	CodeNoRotation         = api.CodeNoRotation
	CodeTooLarge           = api.CodeTooLarge
	CodeTooManyRequests    = api.CodeTooManyRequests
	CodeKeyRejected        = api.CodeKeyRejected
	CodeInternal           = api.CodeInternal
	CodeRolledBack         = api.CodeRolledBack
	CodeNotReady           = api.CodeNotReady
	CodeTimeout            = api.CodeTimeout
)

// ErrorBody is the JSON document every error response carries:
//
//	{"error":{"code":"rotation_in_progress","message":"…"}}
type ErrorBody = api.ErrorBody

// ErrorDetail is the content of an [ErrorBody].
type ErrorDetail = api.ErrorDetail

// maxMessageLen bounds error messages in responses.
const maxMessageLen = 2000

// statuses maps each error class the API reports (package errclass,
// shared with the CLI's exit codes) to a status; its code is the class's
// (errclass.Class.Code). An error wrapping several sentinels (errors.Join)
// gets the class errclass gives precedence.
var statuses = map[errclass.Class]int{
	errclass.NotFound:          http.StatusNotFound,
	errclass.InProgress:        http.StatusConflict,
	errclass.NothingToRollBack: http.StatusConflict,
	errclass.RolledBack:        http.StatusBadGateway,
	errclass.KeyRejected:       http.StatusUnprocessableEntity,
	errclass.SameKey:           http.StatusConflict,
	errclass.NotExpired:        http.StatusConflict,
	errclass.KeyInUse:          http.StatusConflict,
	errclass.ActionRequired:    http.StatusConflict,
	errclass.Conflict:          http.StatusConflict,
	errclass.NoRotation:        http.StatusConflict,
	errclass.Timeout:           http.StatusGatewayTimeout,
}

// classify maps err to a status, a code and a message safe to show. An
// error of no class the API reports (errclass.Other, and a broken audit
// chain, which is the server's own failure) is internal: its message stays
// in the server log and the caller gets a generic one.
func classify(err error) (int, ErrorDetail) {
	c := errclass.Of(err)
	status, ok := statuses[c]
	if !ok {
		return http.StatusInternalServerError, ErrorDetail{Code: CodeInternal, Message: "internal error; the server log has the details"}
	}
	d := ErrorDetail{Code: c.Code(), Message: clip(err.Error())}
	var ar *provider.ActionRequiredError
	if errors.As(err, &ar) {
		d.Steps = slices.Clone(ar.Steps)
	}
	return status, d
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
func redact(d ErrorDetail, values ...string) ErrorDetail {
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
	writeRaw(w, status, append(b, '\n'))
}

// writeRaw sends b, a JSON document, as the body of a response with
// status.
func writeRaw(w http.ResponseWriter, status int, b []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}
