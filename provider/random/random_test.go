package random

import (
	"errors"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/config"
	"github.com/rotor-dev/rotor/provider"
)

func TestMintThenTest(t *testing.T) {
	tests := []struct {
		name   string
		cfg    config.RandomProvider
		length int
	}{
		{"hex", config.RandomProvider{Bytes: 32, Encoding: "hex"}, 64},
		{"base64", config.RandomProvider{Bytes: 32, Encoding: "base64"}, 44},
		{"base64url with prefix", config.RandomProvider{Bytes: 16, Encoding: "base64url", Prefix: "whsec_"}, 6 + 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(&tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			a, err := p.Mint(t.Context(), provider.MintRequest{})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := p.Mint(t.Context(), provider.MintRequest{})
			if a.Value == b.Value {
				t.Fatal("two mints returned the same value")
			}
			if len(a.Value) != tt.length || !strings.HasPrefix(a.Value, tt.cfg.Prefix) {
				t.Fatalf("minted value has length %d, want %d with prefix %q", len(a.Value), tt.length, tt.cfg.Prefix)
			}
			if err := p.Test(t.Context(), a.Value); err != nil {
				t.Fatalf("Test(minted) = %v", err)
			}
		})
	}
}

func TestTestRejectsMalformed(t *testing.T) {
	p, err := New(&config.RandomProvider{Bytes: 16, Encoding: "hex", Prefix: "k_"})
	if err != nil {
		t.Fatal(err)
	}
	secretish := "k_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"
	tests := map[string]string{
		"missing prefix": "00112233445566778899aabbccddeeff",
		"not hex":        secretish,
		"too short":      "k_0011",
	}
	for name, v := range tests {
		t.Run(name, func(t *testing.T) {
			err := p.Test(t.Context(), v)
			if !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("Test = %v, want ErrRejected", err)
			}
			if strings.Contains(err.Error(), v) {
				t.Fatalf("error %q contains the value", err)
			}
		})
	}
}
