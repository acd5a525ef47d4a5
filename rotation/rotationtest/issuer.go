package rotationtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Issuer is a [provider.Preparer] modelling an issuer that keeps one
// credential per account and cannot be asked for it afterwards, like a
// database that stores one password per role. With one account it is a
// single role whose password each rotation replaces (no grace period at the
// issuer); with two it alternates between them, taking the account that
// neither current nor an unexpired previous key uses.
//
// A value is "acct-N:random". Test accepts a value while its account holds
// it; Revoke locks the account only while it still holds the revoked value,
// so revoking an old key never locks an account that was reused since.
type Issuer struct {
	mu       sync.Mutex
	accounts int
	password map[int]string
	applies  int
	flaw     string
}

var _ provider.Preparer = (*Issuer)(nil)

// NewIssuer returns an issuer with accounts accounts (1 or 2).
func NewIssuer(accounts int) *Issuer {
	if accounts != 1 && accounts != 2 {
		panic("rotationtest: an issuer has 1 or 2 accounts")
	}
	return &Issuer{accounts: accounts, password: map[int]string{}}
}

// issuerFlaws are the mistakes a [Preparer] implementation can make that
// [RunProvider] must catch; the suite's self-test injects them.
var issuerFlaws = []string{
	"apply-new-value",       // Apply sets a value of its own, not the prepared one
	"revoke-not-idempotent", // a second Revoke of a key fails
	"revoke-any",            // Revoke locks the account whatever it holds now
	"prepare-ignores-previous",
}

// withFlaw makes the issuer misbehave (self-test only).
func (p *Issuer) withFlaw(flaw string) *Issuer { p.flaw = flaw; return p }

func account(value string) (int, bool) {
	a, _, ok := strings.Cut(value, ":")
	n, err := strconv.Atoi(strings.TrimPrefix(a, "acct-"))
	return n, ok && err == nil && strings.HasPrefix(a, "acct-")
}

func randomValue(acct int) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return fmt.Sprintf("acct-%d:%s", acct, hex.EncodeToString(b))
}

// Prepare picks an account and a fresh value for it, changing nothing.
func (p *Issuer) Prepare(_ context.Context, req provider.MintRequest) (provider.Credential, error) {
	acct := 0
	if p.accounts == 2 && req.Current != nil {
		if cur, ok := account(req.Current.Value); ok && cur == 0 {
			acct = 1
		}
		if prev := req.Previous; prev != nil && p.flaw != "prepare-ignores-previous" {
			if a, ok := account(prev.Value); ok && a == acct {
				return provider.Credential{}, fmt.Errorf("account %d still serves previous key %s", acct, prev.ID)
			}
		}
	}
	return provider.Credential{Value: randomValue(acct), Meta: map[string]string{"account": strconv.Itoa(acct)}}, nil
}

// Mint prepares and applies at once, for callers that are not the engine.
func (p *Issuer) Mint(ctx context.Context, req provider.MintRequest) (provider.Credential, error) {
	c, err := p.Prepare(ctx, req)
	if err != nil {
		return c, err
	}
	return c, p.Apply(ctx, store.Key{Value: c.Value})
}

// Apply makes the value's account hold it.
func (p *Issuer) Apply(_ context.Context, k store.Key) error {
	acct, ok := account(k.Value)
	if !ok || acct >= p.accounts {
		return fmt.Errorf("key %s names no account of this issuer: %w", k.ID, provider.ErrNotApplied)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.applies++
	p.password[acct] = k.Value
	if p.flaw == "apply-new-value" {
		p.password[acct] = randomValue(acct)
	}
	return nil
}

// Test accepts a value its account holds.
func (p *Issuer) Test(_ context.Context, v string) error {
	acct, ok := account(v)
	p.mu.Lock()
	defer p.mu.Unlock()
	if !ok || p.password[acct] != v {
		return fmt.Errorf("issuer: %w", provider.ErrRejected)
	}
	return nil
}

// Revoke locks the key's account if it still holds the key.
func (p *Issuer) Revoke(_ context.Context, k store.Key) error {
	acct, ok := account(k.Value)
	if !ok {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.password[acct] == k.Value || p.flaw == "revoke-any":
		p.password[acct] = "locked-" + randomValue(acct)
	case p.flaw == "revoke-not-idempotent":
		return fmt.Errorf("key %s is already revoked", k.ID)
	}
	return nil
}

// Applies counts the calls of Apply.
func (p *Issuer) Applies() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.applies
}
