package keyring

import "context"

// Source loads a key set.
type Source interface {
	// Load returns the key set as it is now. A set without a current key
	// is an error: return one wrapping ErrNoCurrentKey. Errors must not
	// contain key values.
	Load(ctx context.Context) (Set, error)
}

// Versioner is implemented by sources that can tell cheaply whether the set
// changed. Version must return what Load would put in Set.Version, and
// must change whenever the keys Load returns do, except that a previous or
// next key may drop out of the set when it expires at the same version:
// the keyring stops using an expired key by itself. The empty string means
// "unknown" and makes the keyring load. When Version matches the set in
// use, a refresh does not call Load.
type Versioner interface {
	Version(ctx context.Context) (string, error)
}

// SourceOption configures [EnvSource].
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

// StaticSource always returns set. It is meant for tests and examples.
func StaticSource(set Set) Source { return staticSource{set: set.clone()} }

type staticSource struct{ set Set }

func (s staticSource) Load(context.Context) (Set, error) { return s.set.clone(), nil }
