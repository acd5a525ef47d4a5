// Package random mints app-owned keys: HMAC and session secrets, webhook
// signing secrets, anything rotor's own consumers verify. The issuer is the
// application itself, so every value is valid the moment it exists and
// revoking one means forgetting it, which the store does when it clears the
// slot. A value minted by a run that died before saving it exists nowhere
// and needs no cleanup ([Provider.Recover]).
package random

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/store"
)

// Defaults and limits of [Options].
const (
	DefaultBytes    = 32
	DefaultEncoding = EncodingBase64URL
	MinBytes        = 16
	MaxBytes        = 1024
)

// The encodings of a minted value.
const (
	EncodingHex       = "hex"
	EncodingBase64    = "base64"    // standard alphabet, padded
	EncodingBase64URL = "base64url" // URL alphabet, unpadded
)

// Options says what keys look like.
type Options struct {
	// Bytes is the number of random bytes, MinBytes to MaxBytes; default
	// DefaultBytes.
	Bytes int
	// Encoding is EncodingHex, EncodingBase64 or EncodingBase64URL
	// (default).
	Encoding string
	// Prefix is prepended to every value, e.g. whsec_.
	Prefix string
}

// WithDefaults returns o with its empty fields set to their defaults.
func (o Options) WithDefaults() Options {
	if o.Bytes == 0 {
		o.Bytes = DefaultBytes
	}
	if o.Encoding == "" {
		o.Encoding = DefaultEncoding
	}
	return o
}

// Validate reports every problem of o (after defaults) as a [field.List].
func (o Options) Validate() error {
	o = o.WithDefaults()
	var errs field.List
	if o.Bytes < MinBytes || o.Bytes > MaxBytes {
		errs.Addf(field.NewPath("bytes"), "bytes must be between %d and %d, got %d", MinBytes, MaxBytes, o.Bytes)
	}
	switch o.Encoding {
	case EncodingHex, EncodingBase64, EncodingBase64URL:
	default:
		errs.Addf(field.NewPath("encoding"), "unknown encoding %q (want hex, base64 or base64url)", o.Encoding)
	}
	return errs.Err()
}

// Provider mints random keys of a fixed size, encoding and prefix.
type Provider struct {
	bytes    int
	encoding string
	prefix   string
}

var (
	_ provider.Provider  = (*Provider)(nil)
	_ provider.Recoverer = (*Provider)(nil)
)

// New returns a provider minting keys as o says; empty fields take their
// defaults.
func New(o Options) (*Provider, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("random: %w", err)
	}
	return &Provider{bytes: o.Bytes, encoding: o.Encoding, prefix: o.Prefix}, nil
}

// Mint returns a fresh random value.
func (p *Provider) Mint(context.Context, provider.MintRequest) (provider.Credential, error) {
	b := make([]byte, p.bytes)
	if _, err := rand.Read(b); err != nil {
		return provider.Credential{}, fmt.Errorf("random: %w", err)
	}
	return provider.Credential{Value: p.prefix + p.encode(b)}, nil
}

// Recover answers [provider.ErrNotMinted] for every request: a value Mint
// returned exists nowhere else, so one that was never saved is simply gone
// and nothing can use it.
func (p *Provider) Recover(context.Context, provider.MintRequest) (provider.Credential, error) {
	return provider.Credential{}, fmt.Errorf("random: a value not saved exists nowhere: %w", provider.ErrNotMinted)
}

func (p *Provider) encode(b []byte) string {
	switch p.encoding {
	case EncodingHex:
		return hex.EncodeToString(b)
	case EncodingBase64:
		return base64.StdEncoding.EncodeToString(b)
	default:
		return base64.RawURLEncoding.EncodeToString(b)
	}
}

func (p *Provider) decode(s string) ([]byte, error) {
	switch p.encoding {
	case EncodingHex:
		return hex.DecodeString(s)
	case EncodingBase64:
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
