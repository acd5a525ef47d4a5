// Package authztest runs a local OIDC issuer for tests: an HTTP server on
// loopback that serves a discovery document and a JWKS, and signs tokens
// with its own keys, the way GitHub Actions' issuer does.
//
// # Use
//
//	iss := authztest.NewIssuer(t)
//	v, _ := authz.NewOIDCVerifier(authz.OIDCConfig{Issuer: iss.URL(), Audience: "rotor", Rules: …})
//	tok := iss.Sign(t, iss.GitHubClaims("rotor", "org/app", "refs/heads/main"))
//
// The issuer's keys can be rotated ([Issuer.AddKey]) to exercise refresh
// on an unknown kid, and it counts key set fetches ([Issuer.JWKSFetches]).
package authztest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a local OIDC issuer. Create one with [NewIssuer].
type Issuer struct {
	srv *httptest.Server

	// Now is the clock GitHubClaims uses for iat, nbf and exp. Default
	// time.Now.
	Now func() time.Time

	mu      sync.Mutex
	keys    []signingKey // the last one signs
	docIss  string       // issuer the discovery document names
	fetches atomic.Int64
}

type signingKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
	pub  bool // published in the JWKS
}

// NewIssuer starts an issuer with one published ES256 key, stopped when
// the test ends.
func NewIssuer(t testing.TB) *Issuer {
	t.Helper()
	iss := &Issuer{Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		iss.mu.Lock()
		doc := map[string]any{"issuer": iss.docIss, "jwks_uri": iss.srv.URL + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256", "ES256"}}
		iss.mu.Unlock()
		json.NewEncoder(w).Encode(doc)
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		iss.fetches.Add(1)
		json.NewEncoder(w).Encode(iss.JWKS())
	})
	iss.srv = httptest.NewServer(mux)
	t.Cleanup(iss.srv.Close)
	iss.docIss = iss.srv.URL
	iss.AddKey(t, jose.ES256, true)
	return iss
}

// URL is the issuer identifier (and base URL): http://127.0.0.1:port.
func (iss *Issuer) URL() string { return iss.srv.URL }

// SetDiscoveryIssuer makes the discovery document name another issuer, as
// a misconfigured or hostile server would.
func (iss *Issuer) SetDiscoveryIssuer(s string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.docIss = s
}

// AddKey generates a key (ES256, or RS256 with 2048 bits) that signs from
// now on, published in the JWKS or not, and returns its kid.
func (iss *Issuer) AddKey(t testing.TB, alg jose.SignatureAlgorithm, publish bool) string {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		priv, err = rsaKey()
	default:
		t.Fatalf("authztest: unsupported algorithm %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	kid := "key-" + strconv.Itoa(len(iss.keys)+1)
	iss.keys = append(iss.keys, signingKey{kid: kid, alg: alg, priv: priv, pub: publish})
	return kid
}

// Publish adds the key called kid to the JWKS.
func (iss *Issuer) Publish(kid string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	for i := range iss.keys {
		if iss.keys[i].kid == kid {
			iss.keys[i].pub = true
		}
	}
}

// JWKS returns the published key set.
func (iss *Issuer) JWKS() jose.JSONWebKeySet {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range iss.keys {
		if k.pub {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
	}
	return set
}

// JWKSFetches counts the requests for the JWKS so far.
func (iss *Issuer) JWKSFetches() int64 { return iss.fetches.Load() }

// GitHubClaims returns the claims of a GitHub Actions token for a workflow
// of repository running on ref, issued now and valid for five minutes.
func (iss *Issuer) GitHubClaims(audience, repository, ref string) map[string]any {
	now := iss.Now()
	return map[string]any{
		"iss":                 iss.URL(),
		"aud":                 audience,
		"sub":                 "repo:" + repository + ":ref:" + ref,
		"iat":                 now.Unix(),
		"nbf":                 now.Unix(),
		"exp":                 now.Add(5 * time.Minute).Unix(),
		"jti":                 strconv.FormatInt(now.UnixNano(), 36),
		"repository":          repository,
		"repository_id":       "424242",
		"repository_owner":    ownerOf(repository),
		"repository_owner_id": "4242",
		"ref":                 ref,
		"ref_type":            "branch",
		"workflow":            "rotate",
		"job_workflow_ref":    repository + "/.github/workflows/rotate.yml@" + ref,
		"run_id":              "1234567890",
		"run_attempt":         "1",
		"actor":               "octocat",
		"event_name":          "workflow_dispatch",
	}
}

func ownerOf(repo string) string {
	for i := 0; i < len(repo); i++ {
		if repo[i] == '/' {
			return repo[:i]
		}
	}
	return repo
}

// Sign signs claims with the newest key, naming it in the kid header.
func (iss *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	iss.mu.Lock()
	k := iss.keys[len(iss.keys)-1]
	iss.mu.Unlock()
	return SignWith(t, k.alg, k.priv, k.kid, claims)
}

// SignWith signs claims with key under alg, naming kid in the header.
func SignWith(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func rsaKey() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }
