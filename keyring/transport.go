package keyring

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// ErrUnauthorized is what [Keyring.Do] treats as "the key was rejected" by
// default. Wrap it in the error fn returns when the remote side refuses the
// key (an HTTP 401, an API's "invalid key" error).
var ErrUnauthorized = errors.New("unauthorized")

// drainLimit bounds how much of a rejected response is read so that its
// connection can be reused.
const drainLimit = 64 << 10

// Transport returns an [http.RoundTripper] that authenticates every request
// with "Authorization: Bearer <current key>" (replacing any Authorization
// header the request has) and sends it through base ([http.DefaultTransport]
// if nil).
//
// When the response is 401 Unauthorized, the keyring has a previous key that
// has not expired and differs from the current one, and the request is safe
// to send again, the request is sent once more with the previous key, and
// that second response is returned whatever its status. This covers the
// moments of a rotation when the issuer already rejects a key the process
// still holds as current, or does not accept the new one yet. A request is
// safe to send again when both hold:
//
//   - its method is idempotent per RFC 9110 (GET, HEAD, OPTIONS, TRACE, PUT,
//     DELETE), or it carries an Idempotency-Key or X-Idempotency-Key header
//     (present in the header map, as net/http itself counts it);
//   - it has no body (Body is nil or [http.NoBody]), or its body can be
//     recreated (GetBody is non-nil, as [http.NewRequest] sets for in-memory
//     bodies).
//
// So a POST without an idempotency key is never retried, nor is any request
// whose body is a one-shot stream. The first response's body is drained (up
// to 64 KiB) and closed before the retry. The caller's request is never
// modified: each attempt sends a clone. Both attempts use the same snapshot
// of the key set.
func (k *Keyring) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{k: k, base: base}
}

type transport struct {
	k    *Keyring
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	st := t.k.state.Load()
	resp, err := t.base.RoundTrip(authorized(req, st.set.Current.Value))
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable(req) {
		return resp, err
	}
	prev, ok := st.fallback(t.k.cfg.now())
	if !ok {
		return resp, nil
	}
	retry := authorized(req, prev.Value)
	if hasBody(req) {
		body, err := req.GetBody()
		if err != nil {
			return resp, nil // the first answer stands
		}
		retry.Body = body
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainLimit))
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

// authorized returns a clone of req that authenticates with value.
func authorized(req *http.Request, value string) *http.Request {
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+value)
	return r
}

func hasBody(req *http.Request) bool { return req.Body != nil && req.Body != http.NoBody }

// replayable reports whether req may be sent a second time; see
// [Keyring.Transport].
func replayable(req *http.Request) bool {
	if hasBody(req) && req.GetBody == nil {
		return false
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	_, ok := req.Header["Idempotency-Key"]
	_, xok := req.Header["X-Idempotency-Key"]
	return ok || xok
}

// DoOption configures [Keyring.Do].
type DoOption func(*doConfig)

type doConfig struct {
	rejected func(error) bool
}

// WithAuthFailure sets the predicate that decides whether an error of fn
// means the key was rejected, so that the previous key is worth a try. The
// default is errors.Is(err, ErrUnauthorized).
func WithAuthFailure(rejected func(err error) bool) DoOption {
	return func(c *doConfig) { c.rejected = rejected }
}

func isUnauthorized(err error) bool { return errors.Is(err, ErrUnauthorized) }

// Do calls fn with the current key. If fn fails with an error the predicate
// (see [WithAuthFailure]) calls an authentication failure, the keyring has
// a valid previous key that differs from the current one and ctx is not
// done, Do calls fn once more with the previous key and returns what that
// call returns. Otherwise it returns fn's first error. Both calls use the
// same snapshot of the key set. fn must be safe to call twice.
func (k *Keyring) Do(ctx context.Context, fn func(ctx context.Context, key Key) error, opts ...DoOption) error {
	c := doConfig{rejected: isUnauthorized}
	for _, o := range opts {
		o(&c)
	}
	st := k.state.Load()
	err := fn(ctx, st.set.Current)
	if err == nil || !c.rejected(err) || ctx.Err() != nil {
		return err
	}
	prev, ok := st.fallback(k.cfg.now())
	if !ok {
		return err
	}
	return fn(ctx, prev)
}
