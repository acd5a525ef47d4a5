package field_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/rotor-dev/rotor/field"
)

func TestPathString(t *testing.T) {
	tests := map[string]field.Path{
		"":                 nil,
		"auth.role_id":     field.NewPath("auth", "role_id"),
		"command[0]":       field.NewPath("command", 0),
		"secrets[1].clerk": field.NewPath("secrets", 1, "clerk"),
	}
	for want, p := range tests {
		if got := p.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", p, got, want)
		}
	}
	p := field.NewPath("a")
	q := p.Child("b")
	r := p.Child("c")
	if q.String() != "a.b" || r.String() != "a.c" {
		t.Errorf("Child shares storage between children: %s, %s", q, r)
	}
}

func TestList(t *testing.T) {
	var nested field.List
	nested.Addf(field.NewPath("role_id"), "auth method approle needs a role_id")
	var l field.List
	if l.Err() != nil {
		t.Fatal("an empty list is a non-nil error")
	}
	l.Addf(field.NewPath("mount"), "invalid mount %q", "a b")
	l.Add(field.NewPath("auth"), fmt.Errorf("vault: %w", nested.Err()))
	l.Add(field.NewPath("address"), errors.New("plain error"))
	l.Add(field.NewPath("nothing"), nil)
	want := `mount: invalid mount "a b"; auth.role_id: auth method approle needs a role_id; address: plain error`
	if got := l.Err().Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var one *field.Error
	if !errors.As(l.Err(), &one) || one.Path.String() != "mount" {
		t.Errorf("errors.As(*Error) = %v, want the first problem", one)
	}
}
