package authz

import (
	"bytes"
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

// keySet holds the issuer's signing keys. go-oidc's RemoteKeySet keeps
// them: it fetches the key set on first use and again whenever a signature
// does not verify with the keys it holds (a token naming a key the issuer
// has just added), lets concurrent callers share one fetch, and verifies
// signatures. Discovery is go-oidc's too ([oidc.NewProvider], which
// insists that the document names the configured issuer).
//
// RemoteKeySet trusts a key for ever once fetched and fetches again for
// every token it cannot verify. An API that anybody can send tokens to
// and that CI depends on needs three more rules, which keySet adds:
//
//   - the issuer is asked at most once per MinRefreshInterval ([keySet.fetch]
//     refuses the other requests without sending them), so forged tokens
//     and tokens naming unknown keys cannot make rotor hammer the issuer;
//   - keys fetched longer than CacheTTL ago are fetched again, by a new
//     RemoteKeySet (a generation), so a key the issuer withdrew stops being
//     trusted; until the new generation has keys the old one stays in use,
//     so an issuer outage does not lock CI out;
//   - only usable keys ([usableKey]) ever reach a RemoteKeySet: the key set
//     it is handed (see [keyGen.RoundTrip]) is the issuer's, less the keys
//     rotor refuses.
type keySet struct {
	cfg    *OIDCConfig
	client *http.Client // cfg.HTTPClient with response bodies bounded

	mu          sync.Mutex
	cur         *keyGen   // the keys in use; nil until a fetch succeeded
	next        *keyGen   // the generation replacing cur, or nil
	lastAttempt time.Time // of the last request to the issuer
	lastErr     error     // of the last request to the issuer
}

func newKeySet(cfg *OIDCConfig) *keySet {
	client := *cfg.HTTPClient
	client.Transport = boundedBodies{client.Transport}
	return &keySet{cfg: cfg, client: &client}
}

// keyGen is one generation of the key set: a RemoteKeySet that fetches
// through the generation itself, and the keys its last fetch handed over.
type keyGen struct {
	set    *keySet
	remote *oidc.RemoteKeySet

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time
}

func (s *keySet) newGen() *keyGen {
	g := &keyGen{set: s}
	// The URL only names the key set in go-oidc's own messages: every
	// request goes to g.RoundTrip, which discovers the real one.
	u := s.cfg.JWKSURL
	if u == "" {
		u = s.cfg.Issuer
	}
	ctx := oidc.ClientContext(context.Background(), &http.Client{Transport: g})
	g.remote = oidc.NewRemoteKeySet(ctx, u)
	return g
}

// verify returns the payload of token, whose header names kid and alg,
// once a usable key of the issuer has verified its signature.
func (s *keySet) verify(ctx context.Context, token, kid, alg string) ([]byte, error) {
	g, stale := s.pick()
	payload, err := g.remote.VerifySignature(ctx, token)
	if err != nil && stale != nil && !g.hasKeys() {
		// No fresh keys to be had: keep to the old ones.
		g = stale
		payload, err = g.remote.VerifySignature(ctx, token)
	}
	if err == nil {
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
		s.next = s.newGen()
	}
	return s.next, s.cur
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

// RoundTrip answers the RemoteKeySet's request for the key set: it fetches
// the issuer's keys (subject to [keySet.fetch]'s rate limit) and returns
// the usable ones as a JWK set.
func (g *keyGen) RoundTrip(req *http.Request) (*http.Response, error) {
	keys, err := g.set.fetch(req.Context())
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.keys, g.fetchedAt = keys, g.set.cfg.Now()
	g.mu.Unlock()
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       req,
	}, nil
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
