package keyring

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// The suffixes of the environment variables that carry a key set; see
// "Environment variables" in the package documentation. The current key
// is also in the variable NAME itself, without a suffix.
const (
	EnvPrimary        = "_PRIMARY"
	EnvSecondary      = "_SECONDARY"
	EnvKeyID          = "_KEY_ID"
	EnvSecondaryKeyID = "_SECONDARY_KEY_ID"
)

// EnvVars returns the environment variables that carry set under name, as
// "NAME=value" strings in this order: NAME and NAME_PRIMARY (the current
// key), NAME_SECONDARY (the previous key, or empty), NAME_KEY_ID and
// NAME_SECONDARY_KEY_ID (their ids, or empty). Every variable is present,
// empty when its key is absent, so that a process given a new environment
// drops a key that is gone. The next key is not carried.
//
// The environment cannot carry an expiry, and a process keeps its
// environment until it is restarted or re-reads it: pass a set without
// expired keys (see [Set.Unexpired]) and write the variables again when
// the set changes, as `rotor run` does.
func EnvVars(name string, set Set) []string {
	secondary, secondaryID := "", ""
	if p := set.Previous; p != nil {
		secondary, secondaryID = p.Value, p.ID
	}
	return []string{
		name + "=" + set.Current.Value,
		name + EnvPrimary + "=" + set.Current.Value,
		name + EnvSecondary + "=" + secondary,
		name + EnvKeyID + "=" + set.Current.ID,
		name + EnvSecondaryKeyID + "=" + secondaryID,
	}
}

// EnvSource reads a key set from the environment variables [EnvVars]
// writes (see "Environment variables" in the package documentation): the
// current key from NAME_PRIMARY, or from NAME when NAME_PRIMARY is unset or
// empty, and the previous key from NAME_SECONDARY (without an expiry: the
// environment does not carry one). Surrounding white space is trimmed; a
// secondary equal to the current key is ignored. Key ids come from
// NAME_KEY_ID and NAME_SECONDARY_KEY_ID when set (rotor run sets them to
// rotor's ids), else as described at [WithSalt]. getenv looks variables
// up; nil means [os.Getenv]. The set has no Version.
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
	cur := get(EnvPrimary)
	if cur == "" {
		cur = get("")
	}
	if cur == "" {
		return Set{}, fmt.Errorf("environment: %s%s and %s are empty: %w", s.name, EnvPrimary, s.name, ErrNoCurrentKey)
	}
	// rotor run passes rotor's own key ids along; prefer them, so the
	// ids match `rotor status` without the app holding the salt.
	id := func(value, suffix string) string {
		if v := get(suffix); v != "" {
			return v
		}
		return s.cfg.id(value)
	}
	set := Set{Current: Key{Value: cur, ID: id(cur, EnvKeyID)}}
	if prev := get(EnvSecondary); prev != "" && prev != cur {
		set.Previous = &Key{Value: prev, ID: id(prev, EnvSecondaryKeyID)}
	}
	return set, nil
}
