package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/rotor-dev/rotor/api"
	"github.com/rotor-dev/rotor/audit"
	"github.com/rotor-dev/rotor/authz"
	"github.com/rotor-dev/rotor/store"
)

// ListResponse is the body of GET /v1/secrets.
type ListResponse = api.List

// AuditResponse is the body of GET /v1/audit: the last records of the
// log, oldest first. A caller limited to some secrets sees only the
// records about them.
type AuditResponse = api.Audit

// StageRequest is the body of POST /v1/secrets/{name}/stage. It carries a
// secret value, so the server accepts it only over TLS or from loopback
// (see [WithPlaintextValues]).
type StageRequest struct {
	// Value is the key to stage. Required.
	Value string `json:"value"`
	// Meta is kept with the key, e.g. {"name": "<dashboard name>"}; never
	// secret.
	Meta map[string]string `json:"meta,omitempty"`
}

// RevokeRequest is the (optional) body of POST /v1/secrets/{name}/revoke.
type RevokeRequest struct {
	// Force revokes keys still within their grace period.
	Force bool `json:"force"`
}

// NotifyResponse is the body of the 202 answer to POST
// /v1/secrets/{name}/notify.
type NotifyResponse struct {
	// Secret is the secret whose watch streams will read it again.
	Secret string `json:"secret"`
}

// emptyRequest is the (optional) body of rotate, rollback and notify: {}.
type emptyRequest struct{}

// errBody is a request body the server refuses.
type errBody struct {
	status int
	msg    string
}

// Error returns the message for the caller.
func (e *errBody) Error() string { return e.msg }

// decodeBody decodes the JSON body of r into dst strictly: at most
// maxBodySize bytes of UTF-8, one object, no unknown fields, no key twice
// and no key in another case than the field's (see checkStrict), nothing
// after it. An
// empty body leaves dst alone unless required. Error messages name fields,
// never repeat values.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any, required bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodySize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return &errBody{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxBodySize)}
		}
		return &errBody{http.StatusBadRequest, "cannot read the request body"}
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if required {
			return &errBody{http.StatusBadRequest, "request body required"}
		}
		return nil
	}
	if err := checkStrict(b, reflect.TypeOf(dst)); err != nil {
		return &errBody{http.StatusBadRequest, err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr) && typeErr.Field != "":
			return &errBody{http.StatusBadRequest, fmt.Sprintf("request body: field %q has the wrong type", typeErr.Field)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return &errBody{http.StatusBadRequest, "request body: " + clipTo(strings.TrimPrefix(err.Error(), "json: "), 200)}
		}
		return &errBody{http.StatusBadRequest, "request body is not the expected JSON object"}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &errBody{http.StatusBadRequest, "request body has data after the JSON object"}
	}
	return nil
}

// badBody answers a request whose body decodeBody refused.
func badBody(w http.ResponseWriter, err error) {
	var eb *errBody
	if errors.As(err, &eb) {
		code := CodeBadRequest
		if eb.status == http.StatusRequestEntityTooLarge {
			code = CodeTooLarge
		}
		writeError(w, eb.status, ErrorDetail{Code: code, Message: eb.msg})
		return
	}
	writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeBadRequest, Message: "bad request"})
}

// fail answers a backend error, logging the ones callers do not see.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error, values ...string) {
	status, d := classify(err)
	if status == http.StatusInternalServerError {
		msg := err.Error()
		for _, v := range values {
			if v != "" {
				msg = strings.ReplaceAll(msg, v, "[redacted]")
			}
		}
		s.opts.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", msg)
	}
	writeError(w, status, redact(d, values...))
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, c call) {
	names, err := s.backend.Names(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	resp := ListResponse{Secrets: []string{}}
	for _, n := range names {
		if c.p.Grants(n) {
			resp.Secrets = append(resp.Secrets, n)
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, c call) {
	v, err := s.backend.Status(r.Context(), c.secret)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// operate runs a change to c.secret detached from the client's
// connection, then wakes the secret's watchers whatever the outcome (a
// failed rotation may have rolled back).
func operate[T any](s *Server, w http.ResponseWriter, r *http.Request, c call, op func(ctx context.Context) (T, error), values ...string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.opts.opTimeout)
	defer cancel()
	res, err := op(ctx)
	s.Notify(c.secret)
	if err != nil {
		s.fail(w, r, err, values...)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) rotate(w http.ResponseWriter, r *http.Request, c call) {
	if err := decodeBody(w, r, &emptyRequest{}, false); err != nil {
		badBody(w, err)
		return
	}
	operate(s, w, r, c, func(ctx context.Context) (api.Result, error) {
		return s.backend.Rotate(ctx, c.secret, c.p.Subject)
	})
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request, c call) {
	if err := decodeBody(w, r, &emptyRequest{}, false); err != nil {
		badBody(w, err)
		return
	}
	operate(s, w, r, c, func(ctx context.Context) (api.Result, error) {
		return s.backend.Rollback(ctx, c.secret, c.p.Subject)
	})
}

func (s *Server) stage(w http.ResponseWriter, r *http.Request, c call) {
	if !s.secure(r) {
		s.refuse(w, r, authz.ActionStage, c.secret, c.p.Subject, http.StatusForbidden,
			ErrorDetail{Code: CodeTLSRequired, Message: "stage carries a secret value: use https"}, "plain HTTP from a non-loopback peer")
		return
	}
	var req StageRequest
	if err := decodeBody(w, r, &req, true); err != nil {
		badBody(w, err)
		return
	}
	if err := store.ValidateValue(req.Value); err != nil {
		writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeBadRequest, Message: "value: " + err.Error()})
		return
	}
	operate(s, w, r, c, func(ctx context.Context) (api.Staged, error) {
		return s.backend.Stage(ctx, c.secret, req.Value, req.Meta, c.p.Subject)
	}, req.Value)
}

func (s *Server) revoke(w http.ResponseWriter, r *http.Request, c call) {
	var req RevokeRequest
	if err := decodeBody(w, r, &req, false); err != nil {
		badBody(w, err)
		return
	}
	operate(s, w, r, c, func(ctx context.Context) (api.Revoked, error) {
		return s.backend.Revoke(ctx, c.secret, req.Force, c.p.Subject)
	})
}

// notify makes the watch streams of c.secret read it at once: another
// process changed it in the store. It answers before the read, which the
// streams' reader makes (and coalesces) on its own.
func (s *Server) notify(w http.ResponseWriter, r *http.Request, c call) {
	if err := decodeBody(w, r, &emptyRequest{}, false); err != nil {
		badBody(w, err)
		return
	}
	s.Notify(c.secret)
	writeJSON(w, http.StatusAccepted, NotifyResponse{Secret: c.secret})
}

func (s *Server) auditTail(w http.ResponseWriter, r *http.Request, c call) {
	n := DefaultAuditRecords
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > MaxAuditRecords {
			writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeBadRequest, Message: fmt.Sprintf("n must be a number from 1 to %d", MaxAuditRecords)})
			return
		}
		n = v
	}
	q := r.URL.Query()
	f := audit.Filter{Secret: q.Get("secret"), Initiator: q.Get("initiator")}
	if v := q.Get("since"); v != "" {
		since, err := audit.ParseSince(v, time.Now())
		if err != nil {
			writeError(w, http.StatusBadRequest, ErrorDetail{Code: CodeBadRequest, Message: "since must be a duration (90d, 12h) or an RFC 3339 time"})
			return
		}
		f.Since = since
	}
	var (
		recs []audit.Record
		err  error
	)
	if f == (audit.Filter{}) {
		recs, err = s.audit.Tail(r.Context(), n)
	} else {
		recs, err = s.audit.Query(r.Context(), f, n)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, AuditResponse{Records: visibleRecords(c.p, recs)})
}

// readyTimeout bounds the backend's readiness check.
const readyTimeout = 5 * time.Second

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.backend.Ready(ctx); err != nil {
		s.opts.log.Warn("not ready", "err", err)
		writeError(w, http.StatusServiceUnavailable, ErrorDetail{Code: CodeNotReady, Message: "the store does not answer"})
		return
	}
	writeJSON(w, http.StatusOK, api.Probe{Status: "ready"})
}
