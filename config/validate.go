package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/rotor-dev/rotor/field"
)

// validator collects validation problems with their location.
type validator struct {
	root *yaml.Node
	errs []error
}

func (v *validator) addf(p field.Path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if line := v.line(p); line > 0 {
		v.errs = append(v.errs, fmt.Errorf("line %d: %s: %s", line, p, msg))
		return
	}
	v.errs = append(v.errs, fmt.Errorf("%s: %s", p, msg))
}

// addList adds problems whose paths are locations in the document.
func (v *validator) addList(l field.List) {
	for _, e := range l {
		v.addf(e.Path, "%s", e.Detail)
	}
}

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Problems: v.errs}
}

// line returns the line of the deepest node of p present in the document.
func (v *validator) line(p field.Path) int {
	n := v.root
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range p {
		var next *yaml.Node
		switch e := e.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && e < len(n.Content) {
				next = n.Content[e]
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						next = n.Content[i+1]
						line = n.Content[i].Line
						break
					}
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
		if n.Kind != yaml.ScalarNode {
			line = n.Line
		}
	}
	return line
}

// ValidationError lists every problem found in a config.
type ValidationError struct {
	Problems []error
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	if len(msgs) == 1 {
		return "invalid config: " + msgs[0]
	}
	return "invalid config:\n  " + strings.Join(msgs, "\n  ")
}

// Unwrap returns the individual problems.
func (e *ValidationError) Unwrap() []error { return e.Problems }
