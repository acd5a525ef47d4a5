package authz

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestHashToken(t *testing.T) {
	// SHA-256("abc") from FIPS 180-2, appendix B.1.
	const want = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
	if got := HashToken("abc"); got != want {
		t.Fatalf("HashToken(abc) = %s, want %s", got, want)
	}
	if _, err := parseHash(HashToken("anything")); err != nil {
		t.Fatalf("HashToken output does not parse: %v", err)
	}
}

func TestNewToken(t *testing.T) {
	a, err := NewToken()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) != len(TokenPrefix)+43 {
		t.Fatalf("NewToken gave %d-character tokens, equal=%v", len(a), a == b)
	}
}

func TestTokenValidate(t *testing.T) {
	good := HashToken("rtr_secret")
	tests := []struct {
		name   string
		tokens []Token
		want   string // substring of the error; empty = valid
	}{
		{"valid", []Token{{Name: "deploy", Hash: good, Role: RoleCI}}, ""},
		{"app with secrets", []Token{{Name: "web", Hash: good, Role: RoleApp, Secrets: []string{"clerk"}}}, ""},
		{"plaintext token instead of hash", []Token{{Name: "deploy", Hash: "rtr_secret", Role: RoleCI}}, "sha256:"},
		{"uppercase hex", []Token{{Name: "deploy", Hash: strings.ToUpper(good[7:]), Role: RoleCI}}, "sha256:"},
		{"short hash", []Token{{Name: "deploy", Hash: good[:40], Role: RoleCI}}, "64 lowercase hex"},
		{"no name", []Token{{Hash: good, Role: RoleCI}}, "name is empty"},
		{"bad role", []Token{{Name: "deploy", Hash: good, Role: "root"}}, "unknown role"},
		{"app without secrets", []Token{{Name: "web", Hash: good, Role: RoleApp}}, "needs the secrets"},
		{"bad secret name", []Token{{Name: "web", Hash: good, Role: RoleApp, Secrets: []string{"../x"}}}, "invalid secret name"},
		{"duplicate name", []Token{{Name: "a", Hash: good, Role: RoleCI}, {Name: "a", Hash: HashToken("other"), Role: RoleCI}}, "used twice"},
		{"duplicate hash", []Token{{Name: "a", Hash: good, Role: RoleCI}, {Name: "b", Hash: good, Role: RoleViewer}}, "same hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTokenAuthenticator(tt.tokens)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "rtr_secret"):
				t.Fatalf("error repeats the token: %v", err)
			}
		})
	}
}

// Tokens of TestTokenAuthenticate: random enough for CheckTokenStrength.
const (
	tokDeploy = "rtr_deploy_Yx3kQ9vB2mN7pL4cR8sT1wZ6hF5jD0gA"
	tokWeb    = "rtr_web_Lq7Vn2Xc9Bm4Kt8Rz1Ws6Hd3Pf5Jg0YaE"
)

func TestTokenAuthenticate(t *testing.T) {
	a, err := NewTokenAuthenticator([]Token{
		{Name: "deploy-bot", Hash: HashToken(tokDeploy), Role: RoleCI},
		{Name: "web", Hash: HashToken(tokWeb), Role: RoleApp, Secrets: []string{"clerk"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(t.Context(), tokWeb)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "token:web" || p.Role != RoleApp || len(p.Secrets) != 1 || p.Secrets[0] != "clerk" {
		t.Fatalf("principal = %+v", p)
	}
	p.Secrets[0] = "changed"
	if p2, _ := a.Authenticate(t.Context(), tokWeb); p2.Secrets[0] != "clerk" {
		t.Fatal("a caller changed the authenticator's grants through a returned principal")
	}
	for _, tok := range []string{"", "rtr_unknown", tokDeploy + " ", strings.Repeat("x", maxTokenLen+1)} {
		_, err := a.Authenticate(t.Context(), tok)
		if !errors.Is(err, ErrUnauthenticated) || !errors.Is(err, ErrNoMatch) {
			t.Errorf("token of %d bytes: err = %v, want unauthenticated and no match", len(tok), err)
		}
		if tok != "" && strings.Contains(err.Error(), tok) {
			t.Errorf("error repeats the token: %v", err)
		}
	}
}

// TestCheckTokenStrength: every token rotor token new makes passes, and
// so do random hex and base64url strings of 128 bits (seeded, so the test
// is the same on every run); words and patterns fail.
func TestCheckTokenStrength(t *testing.T) {
	for range 50 {
		tok, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckTokenStrength(tok); err != nil {
			t.Fatalf("a NewToken token: %v", err)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		b := make([]byte, 16)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		for _, tok := range []string{hex.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
			if err := CheckTokenStrength(tok); err != nil {
				t.Fatalf("a random 128-bit token (%d characters): %v", len(tok), err)
			}
		}
	}
	for _, weak := range []string{"", "admin", "rtr_admin", "password1234567890", "12345678901234567890", strings.Repeat("a", 100), strings.Repeat("xy", 50)} {
		if err := CheckTokenStrength(weak); !errors.Is(err, ErrWeakToken) {
			t.Errorf("%q: err = %v, want ErrWeakToken", weak, err)
		}
	}
}
