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
	"math"
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

// Authenticate looks token up among the configured hashes; a token that
// fails [CheckTokenStrength] is refused whatever its hash. It compares the
// token's hash with every configured hash in constant time, so neither the
// answer's timing nor an early exit tells how close a guess came. An
// unknown token is an error wrapping [ErrUnauthenticated] and [ErrNoMatch].
func (a *TokenAuthenticator) Authenticate(_ context.Context, token string) (Principal, error) {
	if token == "" || len(token) > maxTokenLen {
		return Principal{}, &authError{reason: "malformed token", noMatch: true}
	}
	// A guessable token is refused even when its hash is configured:
	// whoever chose it, an attacker can guess it too.
	if CheckTokenStrength(token) != nil {
		return Principal{}, &authError{reason: "token too weak to be a rotor API token", noMatch: true}
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

// MinTokenBits is the least entropy, in bits, rotor accepts in an API
// token: [NewToken] makes 256.
const MinTokenBits = 128

// minObservedBits is the least Shannon entropy per character of a
// token's observed characters: 32 random hex digits carry about 3.7.
const minObservedBits = 3

// ErrWeakToken is wrapped by [CheckTokenStrength]'s errors.
var ErrWeakToken = errors.New("token too weak")

// CheckTokenStrength refuses a token that cannot hold [MinTokenBits] bits
// of entropy: "admin", "changeme", a dictionary word with a number. The
// estimate is generous to random strings and strict with everything else:
// the token's length (without [TokenPrefix]) times the bits per character
// of the smallest common alphabet holding all its characters (digits,
// hex, letters, base64…); and a token whose characters repeat so much
// that their observed distribution carries under 3 bits per character is
// refused too ("aaaa…", "abab…"). A random token of 22 base64url or 32
// hex characters passes; nothing a person chose as a password does. The
// error never quotes the token.
func CheckTokenStrength(token string) error {
	t := strings.TrimPrefix(token, TokenPrefix)
	if bits := alphabetBits(t) * float64(len(t)); bits < MinTokenBits {
		return fmt.Errorf("%w: about %.0f bits, want at least %d (make one with `rotor token new`)", ErrWeakToken, bits, MinTokenBits)
	}
	if perChar := observedBits(t) / float64(len(t)); perChar < minObservedBits {
		return fmt.Errorf("%w: its characters repeat too much (%.1f bits per character), want random ones (make one with `rotor token new`)", ErrWeakToken, perChar)
	}
	return nil
}

// alphabetBits returns log2 of the size of the smallest common alphabet
// holding every byte of t.
func alphabetBits(t string) float64 {
	var lower, upper, digit, hexLower, hexUpper, b64, other bool
	hexLower, hexUpper = true, true
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z':
			lower = true
			hexUpper = false
			if c > 'f' {
				hexLower = false
			}
		case c >= 'A' && c <= 'Z':
			upper = true
			hexLower = false
			if c > 'F' {
				hexUpper = false
			}
		case c >= '0' && c <= '9':
			digit = true
		case c == '-' || c == '_' || c == '+' || c == '/' || c == '=':
			b64 = true
			hexLower, hexUpper = false, false
		default:
			other = true
			hexLower, hexUpper = false, false
		}
	}
	size := 0
	switch {
	case other:
		size = 95 // printable ASCII
	case b64:
		size = 64
	case lower && upper:
		size = 62
	case (hexLower || hexUpper) && (lower || upper):
		size = 16
	case lower || upper:
		size = 26
		if digit {
			size = 36
		}
	case digit:
		size = 10
	default:
		return 0
	}
	return math.Log2(float64(size))
}

// observedBits returns the Shannon entropy of t's byte distribution times
// its length.
func observedBits(t string) float64 {
	var counts [256]int
	for i := 0; i < len(t); i++ {
		counts[t[i]]++
	}
	n := float64(len(t))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h * n
}
