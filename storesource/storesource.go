// Package storesource feeds the keyring SDK from a rotor store: it reads a
// secret's key set straight from the file store, Vault KV v2 or AWS
// Secrets Manager, and it is the one place where rotor turns a stored
// secret into a [keyring.Set].
//
// An application that polls Vault imports it together with store/vault:
//
//	st, err := vault.New(…)                       // a token with rotor's app policy
//	kr, err := keyring.New(ctx, storesource.New(st, "clerk-secret-key"))
//	stop := kr.Start(ctx)
//
// and one that follows AWS Secrets Manager passes the store's read-only
// label view, which needs nothing beyond what the app IAM policy grants:
//
//	kr, err := keyring.New(ctx, storesource.New(st.Labels(), "clerk-secret-key"))
//
// # Dependencies
//
// The keyring module itself depends on the standard library only. This
// package lives in rotor's main module because it needs the stores, so an
// application that imports it requires that module, whose requirements
// (the store clients among them) then take part in the application's
// minimum version selection. Applications that want none of that read
// their keys from rotor's watch endpoint ([keyring.NewWatcher]) or from
// the environment `rotor run` gives them ([keyring.EnvSource]).
//
// # From a stored secret to a key set
//
// [SetOf] is the rule, used by [New], by the watch endpoint of `rotor
// serve` and by `rotor run`:
//
//   - current, previous and next become the set's keys, each with the id
//     rotor stored and its expiry; the pending key and retired keys are
//     rotor's business and never leave the store this way;
//   - a previous or next key that has expired (keyring's [keyring.Key.Expired]
//     rule: valid strictly before its ExpiresAt) is left out, so a value
//     past its grace period is handed to no consumer;
//   - the store version becomes Set.Version;
//   - a secret without a current key is an error wrapping
//     [keyring.ErrNoCurrentKey].
package storesource

import (
	"context"
	"fmt"
	"time"

	"github.com/rotor-dev/rotor/keyring"
	"github.com/rotor-dev/rotor/keyring/keyid"
	"github.com/rotor-dev/rotor/store"
)

// Loader is the read half of a [store.Store]: all a source needs. Any
// rotor store is one, and so is a read-only view such as the AWS Secrets
// Manager store's LabelReader.
type Loader interface {
	Load(ctx context.Context, name string) (*store.Secret, store.Version, error)
}

// Versioner is the optional interface a [Loader] implements when it can
// return a secret's current version without reading the secret (the Vault
// store with a KV metadata read, for example). The version must be the one
// Load returns. [New] uses it to poll cheaply.
type Versioner interface {
	Version(ctx context.Context, name string) (store.Version, error)
}

// Option configures [New].
type Option func(*source)

// WithSalt makes the source derive the id of a key stored without one the
// way rotor does, with keyid.Of and the deployment's salt, instead of the
// keyring's unsalted id. Keys rotor wrote carry their id already.
func WithSalt(salt []byte) Option {
	salt = append([]byte{}, salt...)
	return func(s *source) { s.salt = salt }
}

// WithClock sets the clock that decides which keys have expired (default
// [time.Now]). Give it the keyring's clock when the keyring has its own.
func WithClock(now func() time.Time) Option { return func(s *source) { s.now = now } }

// New returns a [keyring.Source] that reads the secret called name from s,
// building each set with [SetOf]. If s implements [Versioner], so does the
// source, and a polling keyring then reads the secret only when its version
// moved.
func New(s Loader, name string, opts ...Option) keyring.Source {
	src := source{st: s, name: name, now: time.Now}
	for _, o := range opts {
		o(&src)
	}
	if v, ok := s.(Versioner); ok {
		return &versionedSource{source: src, v: v}
	}
	return &src
}

type source struct {
	st   Loader
	name string
	salt []byte
	now  func() time.Time
}

var _ keyring.Source = (*source)(nil)

func (s *source) Load(ctx context.Context) (keyring.Set, error) {
	sec, ver, err := s.st.Load(ctx, s.name)
	if err != nil {
		return keyring.Set{}, fmt.Errorf("store: %w", err)
	}
	set, err := SetOf(sec, ver, s.now())
	if err != nil {
		return keyring.Set{}, fmt.Errorf("store: %w", err)
	}
	if s.salt != nil {
		for _, k := range []*keyring.Key{&set.Current, set.Previous, set.Next} {
			if k != nil && k.ID == "" {
				k.ID = keyid.Of(s.salt, k.Value)
			}
		}
	}
	return set, nil
}

type versionedSource struct {
	source
	v Versioner
}

var _ keyring.Versioner = (*versionedSource)(nil)

func (s *versionedSource) Version(ctx context.Context) (string, error) {
	v, err := s.v.Version(ctx, s.name)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return string(v), nil
}

// SetOf returns the key set of sec, stored at version ver, as it stands at
// now; see "From a stored secret to a key set" in the package
// documentation. A key stored without an id keeps an empty ID (a keyring
// fills in its unsalted id). The error never contains a key value.
func SetOf(sec *store.Secret, ver store.Version, now time.Time) (keyring.Set, error) {
	if sec.Current == nil {
		return keyring.Set{}, fmt.Errorf("secret %s: %w", sec.Name, keyring.ErrNoCurrentKey)
	}
	set := keyring.Set{Current: key(sec.Current), Version: string(ver)}
	if sec.Previous != nil {
		k := key(sec.Previous)
		set.Previous = &k
	}
	if sec.Next != nil {
		k := key(sec.Next)
		set.Next = &k
	}
	return set.Unexpired(now), nil
}

func key(k *store.Key) keyring.Key {
	return keyring.Key{Value: k.Value, ID: k.ID, ExpiresAt: k.ExpiresAt}
}
