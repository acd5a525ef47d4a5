// Package vaultchain keeps rotor's shared audit chain ([audit.Shared]) in
// a HashiCorp Vault KV version 2 mount, next to the secrets it audits.
//
// # Layout
//
// Every key of the chain is one KV secret under <prefix>/_audit/ in the
// mount, its value in the field "v":
//
//	<mount>/data/<prefix>/_audit/head           the chain head (moved with cas)
//	<mount>/data/<prefix>/_audit/records/<seq>  a batch of records, created once
//
// A Put with [audit.NoVersion] is a KV write with cas=0, which Vault
// accepts only for a path without versions; any other Put is a write with
// cas=<version>. The KV version number is the [audit.Version]. Reads see
// the latest version; a deleted latest version reads as missing.
//
// # Access
//
// `rotor policy vault` grants the ci and admin roles create and read on the
// records and create, read and update on the head, and no role delete,
// destroy or update on the records: a token holding a rotor policy can add
// to the chain but not rewrite it. A token that may write the records
// anyway (root, a broader policy) and does not hold the salt cannot forge
// a record that verifies; every rewrite also leaves a KV version behind.
//
// # Cost
//
// An append of one operation's records is one create-only write of the
// batch and one cas write of the head, at the head's version as the
// writer last saw it (it reads the head first only when another writer
// moved it); a writer that loses a race reads the winner's batch and
// writes again. A load's check against the chain (package binding) reads
// the head, and the batches other writers appended. Verify and Tail read
// every batch once.
package vaultchain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/vault/api"

	"github.com/rotor-dev/rotor/audit"
)

// Dir is the folder, under the store's prefix, that holds the chain.
const Dir = "_audit"

// Options say where the chain lives.
type Options struct {
	// Client is an authenticated Vault client, e.g. the store's.
	Client *api.Client
	// Mount is the KV version 2 mount, e.g. "secret".
	Mount string
	// Prefix is the store's path prefix inside the mount; the chain lives
	// under <Prefix>/_audit.
	Prefix string
}

// Backend is an [audit.Backend] in a Vault KV v2 mount.
type Backend struct {
	kv   kvClient
	base string // <mount>/data/<prefix>/_audit/
}

var _ audit.Backend = (*Backend)(nil)

// kvClient is the part of the Vault API this package calls.
type kvClient interface {
	ReadWithContext(ctx context.Context, path string) (*api.Secret, error)
	WriteWithContext(ctx context.Context, path string, data map[string]any) (*api.Secret, error)
}

// New returns the backend described by o.
func New(o Options) (*Backend, error) {
	if o.Client == nil {
		return nil, errors.New("vault audit chain: no client")
	}
	mount, prefix := strings.Trim(o.Mount, "/"), strings.Trim(o.Prefix, "/")
	if mount == "" {
		return nil, errors.New("vault audit chain: no mount")
	}
	base := mount + "/data/"
	if prefix != "" {
		base += prefix + "/"
	}
	return &Backend{kv: o.Client.Logical(), base: base + Dir + "/"}, nil
}

// Path returns the KV data path of key.
func (b *Backend) Path(key string) string { return b.base + key }

// Get implements [audit.Backend].
func (b *Backend) Get(ctx context.Context, key string) ([]byte, audit.Version, error) {
	s, err := b.kv.ReadWithContext(ctx, b.Path(key))
	if err != nil {
		return nil, audit.NoVersion, fmt.Errorf("vault audit chain: read %s: %w", b.Path(key), err)
	}
	if s == nil || s.Data == nil {
		return nil, audit.NoVersion, fmt.Errorf("vault audit chain: %s: %w", b.Path(key), audit.ErrNotExist)
	}
	data, _ := s.Data["data"].(map[string]any)
	if data == nil { // the latest version is deleted or destroyed
		return nil, audit.NoVersion, fmt.Errorf("vault audit chain: %s: %w", b.Path(key), audit.ErrNotExist)
	}
	v, ok := data["v"].(string)
	if !ok {
		return nil, audit.NoVersion, fmt.Errorf("vault audit chain: %s has no string field \"v\": it was not written by rotor", b.Path(key))
	}
	md, _ := s.Data["metadata"].(map[string]any)
	n, err := version(md["version"])
	if err != nil {
		return nil, audit.NoVersion, fmt.Errorf("vault audit chain: %s: metadata version: %w", b.Path(key), err)
	}
	return []byte(v), audit.Version(strconv.FormatUint(n, 10)), nil
}

// Put implements [audit.Backend].
func (b *Backend) Put(ctx context.Context, key string, value []byte, expected audit.Version) (audit.Version, error) {
	var cas uint64
	if expected != audit.NoVersion {
		var err error
		if cas, err = strconv.ParseUint(string(expected), 10, 64); err != nil || cas == 0 {
			return audit.NoVersion, fmt.Errorf("vault audit chain: %q is not a KV version", expected)
		}
	}
	s, err := b.kv.WriteWithContext(ctx, b.Path(key), map[string]any{
		"data":    map[string]any{"v": string(value)},
		"options": map[string]any{"cas": cas},
	})
	switch {
	case isCASMismatch(err):
		return audit.NoVersion, fmt.Errorf("vault audit chain: %s: %w", b.Path(key), audit.ErrConflict)
	case isForbidden(err) && expected == audit.NoVersion:
		// A token that may only create the records is refused, not told
		// of a cas mismatch, when the record exists.
		if _, _, gerr := b.Get(ctx, key); gerr == nil {
			return audit.NoVersion, fmt.Errorf("vault audit chain: %s: %w", b.Path(key), audit.ErrConflict)
		}
		return audit.NoVersion, fmt.Errorf("vault audit chain: write %s: %w", b.Path(key), err)
	case err != nil:
		return audit.NoVersion, fmt.Errorf("vault audit chain: write %s: %w", b.Path(key), err)
	case s == nil || s.Data == nil:
		return audit.NoVersion, fmt.Errorf("vault audit chain: write %s returned no version: is the mount KV version 2?", b.Path(key))
	}
	n, err := version(s.Data["version"])
	if err != nil {
		return audit.NoVersion, fmt.Errorf("vault audit chain: write %s: version: %w", b.Path(key), err)
	}
	return audit.Version(strconv.FormatUint(n, 10)), nil
}

func version(v any) (uint64, error) {
	switch n := v.(type) {
	case json.Number:
		return strconv.ParseUint(n.String(), 10, 64)
	case float64:
		if n < 1 || n != float64(uint64(n)) {
			return 0, fmt.Errorf("%v is not a version", n)
		}
		return uint64(n), nil
	}
	return 0, fmt.Errorf("%v is not a version", v)
}

func isCASMismatch(err error) bool {
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, e := range re.Errors {
		if strings.Contains(e, "check-and-set parameter did not match") {
			return true
		}
	}
	return false
}

func isForbidden(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}
