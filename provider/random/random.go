// Package random mints app-owned keys: HMAC and session secrets, webhook
// signing secrets, anything rotor's own consumers verify. The issuer is the
// application itself, so every value is valid the moment it exists and
// revoking one means forgetting it, which the store does when it clears the
// slot.
package random

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Provider mints random keys of a fixed size, encoding and prefix.
type Provider struct {
	bytes    int
	encoding string
	prefix   string
}

var _ provider.Provider = (*Provider)(nil)

// New returns a provider for a validated config block.
func New(c *config.RandomProvider) (*Provider, error) {
	switch c.Encoding {
	case "hex", "base64", "base64url":
	default:
		return nil, fmt.Errorf("random: unknown encoding %q", c.Encoding)
	}
	if c.Bytes < 16 {
		return nil, fmt.Errorf("random: %d bytes is too short (minimum 16)", c.Bytes)
	}
	return &Provider{bytes: c.Bytes, encoding: c.Encoding, prefix: c.Prefix}, nil
}

// Mint returns a fresh random value.
func (p *Provider) Mint(context.Context, provider.MintRequest) (provider.Credential, error) {
	b := make([]byte, p.bytes)
	if _, err := rand.Read(b); err != nil {
		return provider.Credential{}, fmt.Errorf("random: %w", err)
	}
	return provider.Credential{Value: p.prefix + p.encode(b)}, nil
}

func (p *Provider) encode(b []byte) string {
	switch p.encoding {
	case "hex":
		return hex.EncodeToString(b)
	case "base64":
		return base64.StdEncoding.EncodeToString(b)
	default:
		return base64.RawURLEncoding.EncodeToString(b)
	}
}

func (p *Provider) decode(s string) ([]byte, error) {
	switch p.encoding {
	case "hex":
		return hex.DecodeString(s)
	case "base64":
		return base64.StdEncoding.DecodeString(s)
	default:
		return base64.RawURLEncoding.DecodeString(s)
	}
}

// Test checks that value has the configured shape: prefix, encoding and
// length. A staged value that does not would break consumers that parse it.
func (p *Provider) Test(_ context.Context, value string) error {
	rest, ok := strings.CutPrefix(value, p.prefix)
	if !ok {
		return fmt.Errorf("random: value does not start with the configured prefix %q: %w", p.prefix, provider.ErrRejected)
	}
	b, err := p.decode(rest)
	if err != nil {
		return fmt.Errorf("random: value is not valid %s: %w", p.encoding, provider.ErrRejected)
	}
	if len(b) != p.bytes {
		return fmt.Errorf("random: value decodes to %d bytes, want %d: %w", len(b), p.bytes, provider.ErrRejected)
	}
	return nil
}

// Revoke does nothing: an app-owned key is revoked by no longer being in
// the key set, which the caller ensures by clearing its slot.
func (p *Provider) Revoke(context.Context, store.Key) error { return nil }
