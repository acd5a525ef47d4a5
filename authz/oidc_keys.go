package authz

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// maxDocumentSize bounds the discovery document and the key set.
const maxDocumentSize = 1 << 20

// minRSABits is the smallest RSA key accepted from a key set.
const minRSABits = 2048

// keySet holds the issuer's signing keys. Discovery is go-oidc's
// ([oidc.NewProvider], which insists that the document names the
// configured issuer); signatures are verified by go-jose against the keys
// keySet fetched. It fetches the key set on first use and again whenever
// a signature does not verify with the keys it holds (a token naming a
// key the issuer has just added, the strategy OpenID Connect Core §10.1
// recommends), and concurrent callers share one fetch.
//
// An API that anybody can send tokens to and that CI depends on needs
// three more rules:
//
//   - the issuer is asked at most once per MinRefreshInterval ([keySet.fetch]
//     refuses the other requests without sending them), so forged tokens
//     and tokens naming unknown keys cannot make rotor hammer the issuer;
//   - keys fetched longer than CacheTTL ago are fetched again, into a new
//     generation, so a key the issuer withdrew stops being trusted; until
//     the new generation has keys the old one stays in use, so an issuer
//     outage does not lock CI out;
//   - only usable keys ([usableKey]) are ever held.
//
// (go-oidc's RemoteKeySet is not used for the keys: a caller that arrives
// just as its shared fetch ends is handed that fetch's result instead of
// a new one, so after a refused fetch a token could fail once more even
// though the refresh interval had passed.)
type keySet struct {
	cfg    *OIDCConfig
	client *http.Client // cfg.HTTPClient with response bodies bounded

	mu          sync.Mutex
	cur         *keyGen       // the keys in use; nil until a fetch succeeded
	next        *keyGen       // the generation replacing cur, or nil
	inflight    chan struct{} // closed when the fetch in progress ends; nil when none
	lastAttempt time.Time     // of the last request to the issuer
	lastErr     error         // of the last request to the issuer
}

func newKeySet(cfg *OIDCConfig) *keySet {
	client := *cfg.HTTPClient
	client.Transport = boundedBodies{client.Transport}
	return &keySet{cfg: cfg, client: &client}
}

// keyGen is one generation of the key set: the keys its last fetch
// returned.
type keyGen struct {
	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

// verify returns the payload of token, whose header names kid and alg,
// once a usable key of the issuer has verified its signature.
func (s *keySet) verify(ctx context.Context, token, kid, alg string) ([]byte, error) {
	jws, err := jose.ParseSigned(token, signatureAlgorithms)
	if err != nil {
		return nil, failf("malformed token or algorithm other than RS256 and ES256")
	}
	g, stale := s.pick()
	payload, ok := g.verify(jws, kid, alg)
	if !ok {
		s.refresh(ctx, g)
		payload, ok = g.verify(jws, kid, alg)
	}
	if !ok && stale != nil && !g.hasKeys() {
		// No fresh keys to be had: keep to the old ones.
		g = stale
		payload, ok = g.verify(jws, kid, alg)
	}
	if ok {
		return payload, nil
	}
	if ctx.Err() != nil {
		return nil, failf("fetch signing keys: %v", ctx.Err())
	}
	if len(g.find(kid, alg)) > 0 {
		return nil, failf("bad signature")
	}
	s.mu.Lock()
	lastErr := s.lastErr
	s.mu.Unlock()
	switch {
	case !g.hasKeys():
		return nil, failf("fetch signing keys: %s", truncate(fmt.Sprint(lastErr), 300))
	case lastErr != nil:
		return nil, failf("unknown signing key %q (refreshing keys: %s)", truncate(kid, 100), truncate(lastErr.Error(), 300))
	}
	return nil, failf("unknown signing key %q", truncate(kid, 100))
}

// pick returns the generation to verify with and, while that one has not
// fetched yet, the stale generation to fall back on.
func (s *keySet) pick() (g, stale *keyGen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next != nil && s.next.hasKeys() {
		s.cur, s.next = s.next, nil
	}
	if s.cur != nil && s.cfg.Now().Sub(s.cur.fetched()) < s.cfg.CacheTTL {
		return s.cur, nil
	}
	if s.next == nil {
		s.next = &keyGen{}
	}
	return s.next, s.cur
}

// refresh fetches the issuer's keys into g (subject to [keySet.fetch]'s
// rate limit), or waits for the fetch another caller has in progress.
// The fetch is not bound to ctx's cancellation, only to
// DefaultFetchTimeout: callers waiting on it may have other deadlines.
func (s *keySet) refresh(ctx context.Context, g *keyGen) {
	s.mu.Lock()
	if ch := s.inflight; ch != nil {
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	s.inflight = ch
	s.mu.Unlock()

	keys, err := s.fetch(context.WithoutCancel(ctx))
	if err == nil {
		g.mu.Lock()
		g.keys, g.fetchedAt = keys, s.cfg.Now()
		g.mu.Unlock()
	}
	s.mu.Lock()
	s.inflight = nil
	s.mu.Unlock()
	close(ch)
}

// find returns the keys in use that match kid (every key when kid is
// empty) and can verify alg.
func (s *keySet) find(kid, alg string) []jose.JSONWebKey {
	s.mu.Lock()
	g := s.cur
	if g == nil {
		g = s.next
	}
	s.mu.Unlock()
	if g == nil {
		return nil
	}
	return g.find(kid, alg)
}

// verify returns jws's payload if one of g's keys that matches kid and
// fits alg verifies its signature.
func (g *keyGen) verify(jws *jose.JSONWebSignature, kid, alg string) ([]byte, bool) {
	for _, k := range g.find(kid, alg) {
		if payload, err := jws.Verify(&k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

func (g *keyGen) find(kid, alg string) []jose.JSONWebKey {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []jose.JSONWebKey
	for _, k := range g.keys {
		if (kid == "" || k.KeyID == kid) && keyFits(k, alg) {
			out = append(out, k)
		}
	}
	return out
}

func (g *keyGen) hasKeys() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.keys) > 0
}

func (g *keyGen) fetched() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fetchedAt
}

// errFetchedRecently is what fetch returns when it declines to ask the
// issuer again so soon.
var errFetchedRecently = errors.New("key set fetched recently")

// fetch discovers the key set URL (unless configured) and returns the
// usable keys it holds, unless the issuer was asked less than
// MinRefreshInterval ago.
func (s *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	s.mu.Lock()
	now := s.cfg.Now()
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.cfg.MinRefreshInterval {
		s.mu.Unlock()
		return nil, errFetchedRecently
	}
	s.lastAttempt = now
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, DefaultFetchTimeout)
	defer cancel()
	keys, err := s.download(ctx)
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	return keys, err
}

func (s *keySet) download(ctx context.Context) ([]jose.JSONWebKey, error) {
	jwksURL := s.cfg.JWKSURL
	if jwksURL == "" {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), s.cfg.Issuer)
		var mismatch *oidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("discovery: document names issuer %q, not %q", truncate(mismatch.Discovered, 200), s.cfg.Issuer)
		}
		if err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		var doc struct {
			JWKSURI string `json:"jwks_uri"`
		}
		if err := p.Claims(&doc); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		if err := checkURL("jwks_uri", doc.JWKSURI); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
		jwksURL = doc.JWKSURI
	}
	raw, err := s.get(ctx, jwksURL)
	if err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("key set: GET %s: %w", jwksURL, err)
	}
	var keys []jose.JSONWebKey
	for _, r := range set.Keys {
		var k jose.JSONWebKey
		// Keys of kinds rotor cannot use are skipped, not fatal:
		// issuers may publish others alongside.
		if k.UnmarshalJSON(r) == nil && usableKey(k) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("key set: no usable RS256 or ES256 signing keys")
	}
	return keys, nil
}

// get fetches the body of u.
func (s *keySet) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return b, nil
}

// usableKey reports whether k is a public signing key rotor accepts: RSA
// of at least [minRSABits] for RS256, or P-256 for ES256.
func usableKey(k jose.JSONWebKey) bool {
	return k.IsPublic() && (k.Use == "" || k.Use == "sig") &&
		(keyFits(k, string(jose.RS256)) || keyFits(k, string(jose.ES256)))
}

// keyFits reports whether k is a public key of the kind alg needs.
func keyFits(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		return alg == string(jose.RS256) && pub.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		return alg == string(jose.ES256) && pub.Curve == elliptic.P256()
	}
	return false
}

// boundedBodies makes reading a response body fail after maxDocumentSize
// bytes, for go-oidc's discovery as for the key set: an issuer is trusted
// to sign tokens, not to exhaust rotor's memory.
type boundedBodies struct{ next http.RoundTripper }

func (b boundedBodies) RoundTrip(req *http.Request) (*http.Response, error) {
	next := b.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &boundedBody{ReadCloser: resp.Body, left: maxDocumentSize}
	return resp, nil
}

type boundedBody struct {
	io.ReadCloser
	left int64
}

var errDocumentTooLarge = errors.New("document larger than " + strconv.Itoa(maxDocumentSize) + " bytes")

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a larger one.
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errDocumentTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
