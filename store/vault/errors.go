package vault

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/vault/api"
)

// errCASMismatch is Vault refusing a write whose cas is not the current
// version. Save turns it into store.ErrConflict with context.
var errCASMismatch = errors.New("check-and-set parameter did not match the current version")

func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set parameter did not match") {
			return true
		}
	}
	return false
}

// StatusCode returns the HTTP status of the Vault response that caused
// err, or 0 if err did not come from a Vault response (for example
// because Vault was unreachable).
func StatusCode(err error) int {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return re.StatusCode
	}
	return 0
}

// responseError is a Vault error response on one line, without the
// request body. It unwraps to the client's *api.ResponseError.
type responseError struct {
	re *api.ResponseError
}

func (e *responseError) Error() string {
	path := e.re.URL
	if u, err := url.Parse(e.re.URL); err == nil {
		path = u.Path
	}
	msg := strings.Join(e.re.Errors, "; ")
	if msg == "" {
		msg = http.StatusText(e.re.StatusCode)
	}
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.re.HTTPMethod, path, e.re.StatusCode, msg)
}

func (e *responseError) Unwrap() error { return e.re }

// describe adds the server address to a failed Vault call and shortens the
// client's multi-line response errors. Neither the client's errors nor
// Vault's messages carry request bodies, so no secret value gets in.
func (s *Store) describe(err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("vault %s: %w", s.addr, &responseError{re: re})
	}
	return fmt.Errorf("vault %s: %w", s.addr, err)
}

// ErrAuthRejected is Vault answering a login or token lookup with a
// refusal (HTTP 400, 401 or 403): the credentials are invalid, expired or
// not allowed. It is not returned when Vault could not be reached; that is
// an [*UnreachableError].
var ErrAuthRejected = errors.New("vault rejected the credentials")

// UnreachableError is a Vault call that got no HTTP response: the
// connection was refused, timed out, or failed TLS. It names the address,
// never a credential.
type UnreachableError struct {
	// Addr is the Vault address called.
	Addr string
	// Err is the transport's error.
	Err error
}

func (e *UnreachableError) Error() string {
	return "vault " + e.Addr + " unreachable: " + e.Err.Error()
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// authFailure classifies a failed login or token lookup at path: no
// response is an [*UnreachableError], a refusal wraps [ErrAuthRejected],
// anything else (a sealed Vault's 503) is described as it is.
func authFailure(addr, path, what string, err error) error {
	switch StatusCode(err) {
	case 0:
		return &UnreachableError{Addr: addr, Err: err}
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: %s: %w", ErrAuthRejected, what, loginError(path, err))
	}
	return loginError(path, err)
}
