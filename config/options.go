package config

import (
	"reflect"
	"strings"
	"time"
	"unicode"

	"go.yaml.in/yaml/v3"

	"github.com/rotor-dev/rotor/field"
)

// Backends' Options carry no YAML tags: they are Go APIs, and the YAML
// schema is config's business. decodeOptions maps a block onto them by
// one rule, which is also how a backend names its fields in the problems
// it reports: the key of a field is its Go name in snake_case, an
// initialism staying one word (APIURL → api_url, KMSKeyID → kms_key_id,
// JWTFile → jwt_file). Keys are matched exactly and unknown keys are
// errors, as everywhere in rotor.yaml.

// initialisms are the upper-case words a run of capitals in a field name is
// split into. A run that is not made of them stays one word.
var initialisms = []string{"API", "URL", "ID", "KMS", "JWT", "HTTP", "TLS", "OIDC", "PID", "DSN", "SSL", "TTL", "CA", "DB", "SQL"}

// yamlKey returns the YAML key of the Go field name.
func yamlKey(name string) string {
	var words []string
	rs := []rune(name)
	start := 0
	for i := 1; i <= len(rs); i++ {
		end := i == len(rs)
		if !end {
			prevLower := unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1])
			upperThenLower := unicode.IsUpper(rs[i-1]) && unicode.IsUpper(rs[i]) && i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if !(prevLower && unicode.IsUpper(rs[i])) && !upperThenLower {
				continue
			}
		}
		words = append(words, splitInitialisms(string(rs[start:i]))...)
		start = i
	}
	return strings.ToLower(strings.Join(words, "_"))
}

// splitInitialisms splits an all-capitals word made of initialisms
// (APIURL) into them; any other word is returned whole.
func splitInitialisms(w string) []string {
	if w != strings.ToUpper(w) {
		return []string{w}
	}
	var parts []string
	for rest := w; rest != ""; {
		found := false
		for _, in := range initialisms {
			if strings.HasPrefix(rest, in) {
				parts, rest, found = append(parts, in), rest[len(in):], true
				break
			}
		}
		if !found {
			return []string{w}
		}
	}
	return parts
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

// maxOptionsDepth bounds the nesting decodeOptions follows, aliases
// included, so that a self-referencing document cannot loop.
const maxOptionsDepth = 16

// decodeOptions decodes the block n into out, a pointer to a backend's
// Options, strictly: a key that names no field is a problem, reported at
// its path under p; so is a value of the wrong kind. Durations are written
// as everywhere in rotor.yaml (720h, 30d).
func decodeOptions(n *yaml.Node, out any, p field.Path, errs *field.List) {
	decodeValue(n, reflect.ValueOf(out).Elem(), p, errs, 0)
}

func decodeValue(n *yaml.Node, v reflect.Value, p field.Path, errs *field.List, depth int) {
	if depth > maxOptionsDepth {
		errs.Addf(p, "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		decodeValue(n.Alias, v, p, errs, depth+1)
		return
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // absent: the zero value, which the backend defaults
	}
	t := v.Type()
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode {
			errs.Addf(p, "want a duration such as 720h or 30d")
			return
		}
		d, err := ParseDuration(n.Value)
		if err != nil {
			errs.Addf(p, "%v", err)
			return
		}
		v.SetInt(int64(d))
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct && !reflect.PointerTo(t.Elem()).Implements(unmarshalerType):
		// A list of blocks (notify.targets): each element by these rules.
		if n.Kind != yaml.SequenceNode {
			errs.Addf(p, "want a list of %s", t.Elem())
			return
		}
		list := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, el := range n.Content {
			decodeValue(el, list.Index(i), p.Child(i), errs, depth+1)
		}
		v.Set(list)
	case reflect.PointerTo(t).Implements(unmarshalerType), t.Kind() != reflect.Struct && t.Kind() != reflect.Pointer:
		if err := n.Decode(v.Addr().Interface()); err != nil {
			errs.Addf(p, "%s", strings.TrimPrefix(typeErrorText(err), "yaml: "))
		}
	case t.Kind() == reflect.Pointer:
		if t.Elem().Kind() != reflect.Struct {
			errs.Addf(p, "unsupported option type %s", t)
			return
		}
		elem := reflect.New(t.Elem())
		decodeValue(n, elem.Elem(), p, errs, depth+1)
		v.Set(elem)
	default: // struct
		if n.Kind != yaml.MappingNode {
			errs.Addf(p, "want a mapping of %s", t)
			return
		}
		// YAML merge keys (<<: *anchor, or a list of them) fill the
		// fields first; the block's own keys then override them, as YAML
		// specifies, so that several secrets can share one anchored block.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, val := n.Content[i], n.Content[i+1]; isMergeKey(k) {
				merged := []*yaml.Node{val}
				if resolve(val).Kind == yaml.SequenceNode {
					merged = resolve(val).Content
				}
				for _, m := range merged {
					if resolve(m).Kind != yaml.MappingNode {
						errs.Addf(p.Child("<<"), "a merge key takes a mapping or a list of mappings")
						continue
					}
					decodeValue(m, v, p, errs, depth+1)
				}
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				continue
			}
			fv, ok := fieldByKey(v, k.Value)
			switch {
			case !ok:
				errs.Addf(p.Child(k.Value), "field %s not found in type %s", k.Value, t)
			case seen[k.Value]:
				errs.Addf(p.Child(k.Value), "mapping key %q already defined", k.Value)
			default:
				seen[k.Value] = true
				decodeValue(val, fv, p.Child(k.Value), errs, depth+1)
			}
		}
	}
}

// isMergeKey reports whether k is YAML's merge key <<.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "!!merge" || k.Tag == "")
}

// resolve follows aliases (bounded, as decodeValue is).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; i < maxOptionsDepth && n.Kind == yaml.AliasNode; i++ {
		n = n.Alias
	}
	return n
}

// fieldByKey returns the exported field of the struct v whose YAML key is
// key.
func fieldByKey(v reflect.Value, key string) (reflect.Value, bool) {
	t := v.Type()
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && yamlKey(f.Name) == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// typeErrorText returns the messages of a yaml decoding error without
// their "line N:" prefixes, which the caller's path and line replace.
func typeErrorText(err error) string {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return err.Error()
	}
	msgs := make([]string, len(te.Errors))
	for i, m := range te.Errors {
		if _, rest, ok := strings.Cut(m, ": "); ok && strings.HasPrefix(m, "line ") {
			m = rest
		}
		msgs[i] = m
	}
	return strings.Join(msgs, "; ")
}

// options is what config needs of a backend's Options type O: its
// defaults and its validation, both owned by the backend.
type options[O any] interface {
	WithDefaults() O
	Validate() error
}

// pathResolver is implemented by Options holding file paths, which config
// makes relative to the config file's directory.
type pathResolver[O any] interface {
	ResolvePaths(dir string) O
}

// decodeBlock decodes a backend's block n (nil when the config has none)
// at p into its Options, applies the backend's defaults and validation,
// and resolves its paths against dir. Problems go to errs; ok is false when
// there were any.
func decodeBlock[O options[O]](n *yaml.Node, p field.Path, dir string, errs *field.List) (o O, ok bool) {
	var problems field.List
	if n != nil {
		decodeOptions(n, &o, p, &problems)
	}
	if len(problems) == 0 {
		o = o.WithDefaults()
		problems.Add(p, o.Validate())
	}
	if len(problems) > 0 {
		*errs = append(*errs, problems...)
		return o, false
	}
	if r, ok := any(o).(pathResolver[O]); ok {
		o = r.ResolvePaths(dir)
	}
	return o, true
}
