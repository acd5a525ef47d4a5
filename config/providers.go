package config

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rotor-dev/rotor/field"
	"github.com/rotor-dev/rotor/provider"
	"github.com/rotor-dev/rotor/provider/clerk"
	"github.com/rotor-dev/rotor/provider/clerkmachine"
	"github.com/rotor-dev/rotor/provider/exec"
	"github.com/rotor-dev/rotor/provider/postgres"
	"github.com/rotor-dev/rotor/provider/random"
)

// providers is the one table of the providers a secret can name. A
// secret's provider: picks an entry by name; the provider's options are the
// block named like it with '-' as '_' (clerk-machine: clerk_machine),
// decoded into the provider package's Options. Adding a provider is one
// line here (see package provider).
var providers = []providerKind{
	providerOf("random", func(_ string, o random.Options) (provider.Provider, error) { return random.New(o) }),
	providerOf("clerk", func(name string, o clerk.Options) (provider.Provider, error) { return clerk.NewForEngine(name, o) }),
	providerOf("clerk-machine", func(name string, o clerkmachine.Options) (provider.Provider, error) { return clerkmachine.New(name, o) }).warnGrace(clerkmachine.GraceWarning),
	providerOf("exec", func(name string, o exec.Options) (provider.Provider, error) { return exec.New(name, o) }),
	providerOf("postgres", func(name string, o postgres.Options) (provider.Provider, error) { return postgres.New(name, o) }),
}

// providerKind is one entry of [providers].
type providerKind struct {
	name string
	// options decodes the provider's block (nil: none) at p into its
	// Options with defaults applied and paths resolved against dir.
	options func(n *yaml.Node, p field.Path, dir string, errs *field.List) (any, bool)
	// build makes the provider of the secret called secret.
	build func(secret string, opts any) (provider.Provider, error)
	// graceWarning, when set, says what goes wrong with a grace period
	// the issuer cannot honour.
	graceWarning func(time.Duration) string
}

// providerOf returns the table entry of the provider called name, whose
// Options are O and which newProvider builds.
func providerOf[O options[O]](name string, newProvider func(secret string, o O) (provider.Provider, error)) providerKind {
	return providerKind{
		name: name,
		options: func(n *yaml.Node, p field.Path, dir string, errs *field.List) (any, bool) {
			return decodeBlock[O](n, p, dir, errs)
		},
		build: func(secret string, opts any) (provider.Provider, error) {
			o, ok := opts.(O)
			if !ok {
				return nil, fmt.Errorf("provider %s: options of type %T, want %T", name, opts, o)
			}
			p, err := newProvider(secret, o)
			if err != nil {
				return nil, err
			}
			return p, nil
		},
	}
}

func (k providerKind) warnGrace(f func(time.Duration) string) providerKind {
	k.graceWarning = f
	return k
}

// block is the key of the provider's options block.
func (k providerKind) block() string { return strings.ReplaceAll(k.name, "-", "_") }

// providerNamed returns the entry of the provider called name.
func providerNamed(name string) (providerKind, bool) {
	for _, k := range providers {
		if k.name == name {
			return k, true
		}
	}
	return providerKind{}, false
}

// providerBlock returns the entry whose options block is key.
func providerBlock(key string) (providerKind, bool) {
	for _, k := range providers {
		if k.block() == key {
			return k, true
		}
	}
	return providerKind{}, false
}

// providerNames lists the providers for messages: "random, clerk,
// clerk-machine or exec".
func providerNames() string {
	names := make([]string, len(providers))
	for i, k := range providers {
		names[i] = k.name
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// NewProvider builds the provider of s from its options.
func (s *Secret) NewProvider() (provider.Provider, error) {
	k, ok := providerNamed(s.Provider)
	if !ok {
		return nil, fmt.Errorf("provider %q is not supported by this build", s.Provider)
	}
	return k.build(s.Name, s.ProviderOptions)
}

// Warnings returns what is valid in c but will not work as the operator
// may expect, one line per problem ("billing-m2m: clerk-machine: grace …").
func (c *Config) Warnings() []string {
	var ws []string
	for i := range c.Secrets {
		s := &c.Secrets[i]
		// Options that know they cannot do what the operator may expect
		// say so (postgres single_user: no grace period at the database).
		if w, ok := s.ProviderOptions.(interface{ Warning() string }); ok {
			if msg := w.Warning(); msg != "" {
				ws = append(ws, s.Name+": "+msg)
			}
		}
		if k, ok := providerNamed(s.Provider); ok && k.graceWarning != nil {
			if w := k.graceWarning(c.Policy(s).Grace); w != "" {
				ws = append(ws, s.Name+": "+w)
			}
		}
		if w := consumerTimeoutWarning(s); w != "" {
			ws = append(ws, s.Name+": "+w)
		}
	}
	return ws
}
