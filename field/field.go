// Package field reports problems with options by the path of the field
// they concern, so that whoever built the options can point at where the
// value came from.
//
// Backends (stores, providers, triggers) validate their own Options and
// return a [List]; they know nothing about rotor.yaml. Package config
// prefixes each problem's [Path] with the location of the backend's block
// and adds the line, so a problem a provider reports as
//
//	timeout: 6m0s is longer than 5m
//
// reaches the operator as
//
//	line 7: secrets[1].clerk.timeout: 6m0s is longer than 5m
//
// # Paths
//
// A path names fields in snake_case, as rotor.yaml spells them (api_url for
// a field APIURL, auth.role_id for Auth.RoleID), and list elements by
// index. A program that builds Options in Go reads the same path as a
// pointer to the Go field.
//
// The shape follows Kubernetes' apimachinery validation/field package,
// without its dependencies: backends must stay importable by applications.
package field

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Path locates a field: string elements are field names in snake_case, int
// elements are list indexes. The empty path is the options value itself.
type Path []any

// NewPath returns the path made of elems.
func NewPath(elems ...any) Path { return Path(nil).Child(elems...) }

// Child returns p extended by elems. p itself is not modified.
func (p Path) Child(elems ...any) Path {
	q := make(Path, 0, len(p)+len(elems))
	return append(append(q, p...), elems...)
}

// String writes p the way the configuration reads: auth.role_id,
// command[0].
func (p Path) String() string {
	var b strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			b.WriteString("[" + strconv.Itoa(e) + "]")
		default:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			fmt.Fprint(&b, e)
		}
	}
	return b.String()
}

// Error is one problem with the field at Path. Detail never contains a
// secret value: a field that should name a secret but holds one is
// reported without quoting it.
type Error struct {
	Path   Path
	Detail string
}

// Error returns "path: detail", or the detail alone for the empty path.
func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return e.Detail
	}
	return e.Path.String() + ": " + e.Detail
}

// Errorf returns a problem at p.
func Errorf(p Path, format string, args ...any) *Error {
	return &Error{Path: p, Detail: fmt.Sprintf(format, args...)}
}

// List is every problem found in one options value. Validate methods
// collect all of them rather than stopping at the first, so an operator
// fixes a config in one pass.
type List []*Error

// Addf records a problem at p.
func (l *List) Addf(p Path, format string, args ...any) { *l = append(*l, Errorf(p, format, args...)) }

// Add records the problems of err under p: each problem of a [List] or an
// [*Error] with its path prefixed by p, any other error as one problem at
// p. A nil err adds nothing.
func (l *List) Add(p Path, err error) {
	if err == nil {
		return
	}
	var list List
	var one *Error
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			*l = append(*l, &Error{Path: p.Child(e.Path...), Detail: e.Detail})
		}
	case errors.As(err, &one):
		*l = append(*l, &Error{Path: p.Child(one.Path...), Detail: one.Detail})
	default:
		*l = append(*l, &Error{Path: p, Detail: err.Error()})
	}
}

// Err returns l as an error, or nil when it holds no problem. Always
// return l.Err() rather than l: a nil List in an error interface is not a
// nil error.
func (l List) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Error joins the problems with "; ".
func (l List) Error() string {
	msgs := make([]string, len(l))
	for i, e := range l {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the problems, for errors.As on a single [*Error].
func (l List) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
