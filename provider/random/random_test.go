package random

import (
	"errors"
	"strings"
	"testing"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/provider"
)

func TestMintThenTest(t *testing.T) {
	tests := []struct {
		name   string
		cfg    Options
		length int
	}{
		{"hex", Options{Bytes: 32, Encoding: "hex"}, 64},
		{"base64", Options{Bytes: 32, Encoding: "base64"}, 44},
		{"base64url with prefix", Options{Bytes: 16, Encoding: "base64url", Prefix: "whsec_"}, 6 + 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.cfg)
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
	p, err := New(Options{Bytes: 16, Encoding: "hex", Prefix: "k_"})
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

func TestOptions(t *testing.T) {
	if got := (Options{}).WithDefaults(); got.Bytes != DefaultBytes || got.Encoding != EncodingBase64URL {
		t.Errorf("defaults = %+v, want %d bytes, base64url", got, DefaultBytes)
	}
	tests := []struct {
		name   string
		o      Options
		path   string // of the one problem; "" for none
		detail string
	}{
		{"zero value takes the defaults", Options{}, "", ""},
		{"shortest", Options{Bytes: MinBytes}, "", ""},
		{"too short", Options{Bytes: 8}, "bytes", "bytes must be between 16 and 1024, got 8"},
		{"too long", Options{Bytes: 2048}, "bytes", "got 2048"},
		{"unknown encoding", Options{Encoding: "rot13"}, "encoding", `unknown encoding "rot13"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.o.Validate()
			if tt.path == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var list field.List
			if !errors.As(err, &list) || len(list) != 1 {
				t.Fatalf("Validate = %v, want one field problem", err)
			}
			if list[0].Path.String() != tt.path || !strings.Contains(list[0].Detail, tt.detail) {
				t.Errorf("problem = %q at %q, want %q at %q", list[0].Detail, list[0].Path, tt.detail, tt.path)
			}
			if _, err := New(tt.o); err == nil {
				t.Error("New accepted options Validate rejects")
			}
		})
	}
}

// TestRecoverFindsNothing: a minted value that was never saved exists
// nowhere, so recovering any request answers ErrNotMinted and the engine
// mints again instead of reporting a possibly orphaned key.
func TestRecoverFindsNothing(t *testing.T) {
	p, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	req := provider.MintRequest{Secret: "s", RequestID: "req-1"}
	if _, err := p.Mint(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Recover(t.Context(), req); !errors.Is(err, provider.ErrNotMinted) {
		t.Fatalf("Recover = %v, want ErrNotMinted", err)
	}
}
