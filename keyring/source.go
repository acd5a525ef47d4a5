package keyring

import (
	"context"
	"fmt"
	"os"
	"strings"

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

// EnvSource reads a key set from environment variables as `rotor run`
// provides them: the current key from NAME_PRIMARY, or from NAME when
// NAME_PRIMARY is unset or empty, and the previous key from NAME_SECONDARY
// (without an expiry: the environment does not carry one). Surrounding
// white space is trimmed; a secondary equal to the primary is ignored.
// Key ids come from NAME_KEY_ID and NAME_SECONDARY_KEY_ID when set (rotor
// run sets them to rotor's ids), else as described at [WithSalt].
// getenv looks variables up; nil means [os.Getenv]. The set has no Version.
func EnvSource(name string, getenv func(string) string, opts ...SourceOption) Source {
	if getenv == nil {
		getenv = os.Getenv
	}
	return &envSource{name: name, getenv: getenv, cfg: newSourceConfig(opts)}
}

type envSource struct {
	name   string
	getenv func(string) string
	cfg    sourceConfig
}

func (s *envSource) Load(context.Context) (Set, error) {
	get := func(suffix string) string { return strings.TrimSpace(s.getenv(s.name + suffix)) }
	cur := get("_PRIMARY")
	if cur == "" {
		cur = get("")
	}
	if cur == "" {
		return Set{}, fmt.Errorf("environment: %s_PRIMARY and %s are empty: %w", s.name, s.name, ErrNoCurrentKey)
	}
	// rotor run passes rotor's own key ids along; prefer them, so the
	// ids match `rotor status` without the app holding the salt.
	id := func(value, suffix string) string {
		if v := get(suffix); v != "" {
			return v
		}
		return s.cfg.id(value)
	}
	set := Set{Current: Key{Value: cur, ID: id(cur, "_KEY_ID")}}
	if prev := get("_SECONDARY"); prev != "" && prev != cur {
		set.Previous = &Key{Value: prev, ID: id(prev, "_SECONDARY_KEY_ID")}
	}
	return set, nil
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
