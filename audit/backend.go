package audit

import (
	"context"
	"errors"
)

// Backend is where a [Shared] chain lives: a small key-value store in the
// trust domain of the secrets store (a Vault KV v2 mount, a DynamoDB
// table), shared by every actor that can rotate. It needs two operations,
// and compare-and-swap on the second is what keeps writers on different
// machines from forking the chain.
//
// Keys are short strings of lowercase letters, digits and '/'; values are
// opaque bytes of at most [MaxBackendValue] bytes. A backend maps keys into
// its own namespace (a path prefix, a partition key) and must not interpret
// them.
type Backend interface {
	// Get returns the value stored under key and its version. A key that
	// was never written, or whose value was deleted, is an error wrapping
	// [ErrNotExist].
	Get(ctx context.Context, key string) (value []byte, version Version, err error)
	// Put stores value under key if the key's current version is
	// expected, and returns the new version. expected [NoVersion] means
	// the key must not exist: Put then creates it, or fails. Otherwise Put
	// stores nothing and returns an error wrapping [ErrConflict]. Of any
	// number of concurrent Puts with the same expected version, at most
	// one succeeds.
	Put(ctx context.Context, key string, value []byte, expected Version) (Version, error)
}

// Version identifies a value of a key in a [Backend]; the backend chooses
// its form (a KV version number, a counter).
type Version string

// NoVersion is the version of a key that does not exist.
const NoVersion Version = ""

// MaxBackendValue is the largest value [Shared] stores under one key, so
// that it fits every backend (DynamoDB items hold at most 400 KB).
const MaxBackendValue = 256 << 10

// Errors a [Backend] wraps.
var (
	// ErrNotExist means a key holds no value.
	ErrNotExist = errors.New("audit backend: key does not exist")
	// ErrConflict means a Put lost: the key's version is not the one
	// expected, or the key exists when it was to be created.
	ErrConflict = errors.New("audit backend: version conflict")
)
