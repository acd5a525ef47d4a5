package authz

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/store"
)

// hashPrefix introduces a token hash in the configuration.
const hashPrefix = "sha256:"

// TokenPrefix starts every token [NewToken] makes, so that rotor tokens are
// recognisable in secret scanners and logs that should never have had them.
const TokenPrefix = "rtr_"

// maxTokenLen bounds the bearer tokens Authenticate hashes.
const maxTokenLen = 16 << 10

// HashToken returns the form in which the configuration stores token:
// "sha256:" followed by the hex SHA-256 of the token. A plain hash is
// enough because tokens are random (see [NewToken]), not passwords: a
// stolen configuration does not reveal them.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hashPrefix + hex.EncodeToString(sum[:])
}

// NewToken returns a new random API token: [TokenPrefix] and 256 random
// bits, base64url-encoded. Store only its [HashToken] in the configuration
// and hand the token itself to its user once.
func NewToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new token: %w", err)
	}
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// parseHash decodes a configured "sha256:<64 lowercase hex>" hash.
func parseHash(h string) ([]byte, error) {
	hexPart, ok := strings.CutPrefix(h, hashPrefix)
	if !ok || len(hexPart) != 2*sha256.Size || strings.ToLower(hexPart) != hexPart {
		return nil, errors.New("hash must be sha256: followed by 64 lowercase hex digits (see `rotor token hash`); never the token itself")
	}
	return hex.DecodeString(hexPart)
}

// Token is one API token in the configuration. The token itself is never
// stored, only its hash.
type Token struct {
	// Name identifies the token's holder; the audit log records callers
	// as "token:<name>".
	Name string `yaml:"name" json:"name"`
	// Hash is [HashToken] of the token.
	Hash string `yaml:"hash" json:"hash"`
	// Role is what the holder may do.
	Role Role `yaml:"role" json:"role"`
	// Secrets limits the holder to these secrets (see
	// [Principal.Secrets]); RoleApp tokens must list theirs.
	Secrets []string `yaml:"secrets,omitempty" json:"secrets,omitempty"`
}

// Validate checks t as it appears in the configuration. Its messages
// never repeat the hash.
func (t Token) Validate() error {
	if t.Name == "" {
		return errors.New("token: name is empty")
	}
	if _, err := parseHash(t.Hash); err != nil {
		return fmt.Errorf("token %s: %w", t.Name, err)
	}
	return validateGrant("token "+t.Name, t.Role, t.Secrets)
}

// validateGrant checks a role and its secret list.
func validateGrant(what string, role Role, secrets []string) error {
	if _, err := ParseRole(string(role)); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if role == RoleApp && len(secrets) == 0 {
		return fmt.Errorf("%s: role app needs the secrets it may watch", what)
	}
	for _, s := range secrets {
		if err := store.ValidateName(s); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
	}
	return nil
}

// TokenAuthenticator authenticates the bearer tokens listed in the
// configuration. Create one with [NewTokenAuthenticator].
type TokenAuthenticator struct {
	tokens []tokenEntry
}

type tokenEntry struct {
	sum       []byte
	principal Principal
}

var _ Authenticator = (*TokenAuthenticator)(nil)

// NewTokenAuthenticator validates tokens and returns an authenticator for
// them. Two tokens may not share a name or a hash.
func NewTokenAuthenticator(tokens []Token) (*TokenAuthenticator, error) {
	a := &TokenAuthenticator{}
	names := map[string]bool{}
	sums := map[string]string{}
	for _, t := range tokens {
		if err := t.Validate(); err != nil {
			return nil, err
		}
		if names[t.Name] {
			return nil, fmt.Errorf("token %s: name used twice", t.Name)
		}
		names[t.Name] = true
		if other, ok := sums[t.Hash]; ok {
			return nil, fmt.Errorf("tokens %s and %s have the same hash", other, t.Name)
		}
		sums[t.Hash] = t.Name
		sum, _ := parseHash(t.Hash)
		a.tokens = append(a.tokens, tokenEntry{sum: sum, principal: Principal{
			Subject: "token:" + t.Name,
			Role:    t.Role,
			Secrets: append([]string(nil), t.Secrets...),
		}})
	}
	return a, nil
}

// Authenticate looks token up among the configured hashes. It compares the
// token's hash with every configured hash in constant time, so neither the
// answer's timing nor an early exit tells how close a guess came. An
// unknown token is an error wrapping [ErrUnauthenticated] and [ErrNoMatch].
func (a *TokenAuthenticator) Authenticate(_ context.Context, token string) (Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return Principal{}, &authError{reason: "malformed token", noMatch: true}
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i, t := range a.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, &authError{reason: "unknown token", noMatch: true}
	}
	p := a.tokens[found].principal
	p.Secrets = append([]string(nil), p.Secrets...)
	return p, nil
}
