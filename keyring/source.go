package keyring

import (
	"context"
	"fmt"

	"github.com/rotor-dev/rotor/store"
)

// Source loads a key set.
type Source interface {
	// Load returns the key set as it is now. A set without a current key
	// is an error: return one wrapping ErrNoCurrentKey. Errors must not
	// contain key values.
	Load(ctx context.Context) (Set, error)
}

// Versioner is implemented by sources that can tell cheaply whether the set
// changed. Version must return what Load would put in Set.Version, and
// must change whenever the set does; the empty string means "unknown" and
// makes the keyring load. When Version matches the set in use, a refresh
// does not call Load.
type Versioner interface {
	Version(ctx context.Context) (string, error)
}

// StoreVersioner is the optional interface a [store.Store] implements when
// it can return a secret's current version without reading the secret (the
// Vault store with a KV metadata read, for example). The version must be the
// one Load returns. [StoreSource] uses it to poll cheaply.
type StoreVersioner interface {
	Version(ctx context.Context, name string) (store.Version, error)
}

// SourceOption configures [EnvSource] and [StoreSource].
type SourceOption func(*sourceConfig)

type sourceConfig struct {
	id idFunc
}

func newSourceConfig(opts []SourceOption) sourceConfig {
	c := sourceConfig{id: unsaltedID}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithSalt makes a source derive key ids the way rotor does, with
// keyid.Of and the deployment's salt (the audit salt rotor was set up with),
// so the ids match what rotor prints. Without it ids are unsalted; see the
// package documentation.
func WithSalt(salt []byte) SourceOption {
	salt = append([]byte{}, salt...)
	return func(c *sourceConfig) { c.id = saltedID(salt) }
}

// StoreSource reads the secret called name from a rotor store (file, Vault,
// AWS Secrets Manager): its current, previous and next slots become the
// set (pending is rotor's business and is left out), and the store version
// becomes Set.Version. Key ids are the ones rotor stored; a key stored
// without one gets an id as described at [WithSalt].
//
// If s implements [StoreVersioner], the source implements [Versioner] with
// it, so that polling reads the secret only when it changed.
//
// s is any rotor store, or a read-only view such as the AWS Secrets
// Manager store's LabelReader, which reads only what an application's IAM
// policy allows.
func StoreSource(s Loader, name string, opts ...SourceOption) Source {
	src := storeSource{st: s, name: name, cfg: newSourceConfig(opts)}
	if v, ok := s.(StoreVersioner); ok {
		return &versionedStoreSource{storeSource: src, v: v}
	}
	return &src
}

// Loader is the read half of a store.Store: all StoreSource needs.
type Loader interface {
	Load(ctx context.Context, name string) (*store.Secret, store.Version, error)
}

type storeSource struct {
	st   Loader
	name string
	cfg  sourceConfig
}

func (s *storeSource) Load(ctx context.Context) (Set, error) {
	sec, ver, err := s.st.Load(ctx, s.name)
	if err != nil {
		return Set{}, fmt.Errorf("store: %w", err)
	}
	if sec.Current == nil {
		return Set{}, fmt.Errorf("store: secret %s: %w", s.name, ErrNoCurrentKey)
	}
	set := Set{Current: s.key(sec.Current), Version: string(ver)}
	if sec.Previous != nil {
		k := s.key(sec.Previous)
		set.Previous = &k
	}
	if sec.Next != nil {
		k := s.key(sec.Next)
		set.Next = &k
	}
	return set, nil
}

func (s *storeSource) key(k *store.Key) Key {
	id := k.ID
	if id == "" && k.Value != "" {
		id = s.cfg.id(k.Value)
	}
	return Key{Value: k.Value, ID: id, ExpiresAt: k.ExpiresAt}
}

type versionedStoreSource struct {
	storeSource
	v StoreVersioner
}

var _ Versioner = (*versionedStoreSource)(nil)

func (s *versionedStoreSource) Version(ctx context.Context) (string, error) {
	v, err := s.v.Version(ctx, s.name)
	if err != nil {
		return "", fmt.Errorf("store: %w", err)
	}
	return string(v), nil
}

// StaticSource always returns set. It is meant for tests and examples.
func StaticSource(set Set) Source { return staticSource{set: set.clone()} }

type staticSource struct{ set Set }

func (s staticSource) Load(context.Context) (Set, error) { return s.set.clone(), nil }
