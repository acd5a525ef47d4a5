package authz

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestAllowedTable(t *testing.T) {
	// want lists, per role, the actions an unscoped principal may perform
	// on secret "s1". It restates the package documentation's table so a
	// change to the grants has to be made twice, on purpose.
	want := map[Role]string{
		RoleAdmin:  "list status rotate rollback stage revoke audit watch metrics notify",
		RoleCI:     "list status rotate rollback stage revoke notify",
		RoleViewer: "list status audit metrics",
		RoleApp:    "",
		"":         "",
		"root":     "",
	}
	for role, allowed := range want {
		for _, a := range Actions {
			p := Principal{Subject: "test", Role: role}
			got := Allowed(p, a, "s1")
			exp := strings.Contains(" "+allowed+" ", " "+string(a)+" ")
			if got != exp {
				t.Errorf("Allowed(role %q, %s, s1) = %v, want %v", role, a, got, exp)
			}
		}
	}
}

func TestAllowedScopes(t *testing.T) {
	app := Principal{Subject: "token:web", Role: RoleApp, Secrets: []string{"clerk"}}
	ci := Principal{Subject: "token:deploy", Role: RoleCI, Secrets: []string{"clerk", "webhook"}}
	admin := Principal{Subject: "token:ops", Role: RoleAdmin}
	tests := []struct {
		name   string
		p      Principal
		a      Action
		secret string
		want   bool
		reason string
	}{
		{"app watches its secret", app, ActionWatch, "clerk", true, "granted"},
		{"app other secret", app, ActionWatch, "db", false, "not granted"},
		{"app without secrets", Principal{Role: RoleApp}, ActionWatch, "clerk", false, "an app must be granted its secrets"},
		{"app status", app, ActionStatus, "clerk", false, "apps read keys, not status"},
		{"app list", app, ActionList, "", false, "apps do not list"},
		{"scoped ci in scope", ci, ActionRotate, "webhook", true, "granted"},
		{"scoped ci out of scope", ci, ActionRotate, "db", false, "not granted"},
		{"scoped ci lists", ci, ActionList, "", true, "list concerns no secret; the server filters names"},
		{"ci watch", ci, ActionWatch, "clerk", false, "ci never reads values"},
		{"admin any secret", admin, ActionRevoke, "anything", true, "unscoped"},
		{"per-secret action without a secret", admin, ActionRotate, "", false, "a per-secret action names its secret"},
		{"no role", Principal{Subject: "ci:github:x"}, ActionStatus, "clerk", false, "authenticated but no rule matched"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allowed(tt.p, tt.a, tt.secret); got != tt.want {
				t.Errorf("Allowed = %v, want %v (%s)", got, tt.want, tt.reason)
			}
		})
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	for _, s := range []string{"", "Admin", "root"} {
		if _, err := ParseRole(s); err == nil {
			t.Errorf("ParseRole(%q) succeeded", s)
		}
	}
}

type authFunc func(ctx context.Context, token string) (Principal, error)

func (f authFunc) Authenticate(ctx context.Context, token string) (Principal, error) {
	return f(ctx, token)
}

func TestChain(t *testing.T) {
	noMatch := authFunc(func(context.Context, string) (Principal, error) {
		return Principal{}, &authError{reason: "nope", noMatch: true}
	})
	expired := authFunc(func(context.Context, string) (Principal, error) {
		return Principal{}, &authError{reason: "oidc: token expired"}
	})
	ok := authFunc(func(context.Context, string) (Principal, error) {
		return Principal{Subject: "x", Role: RoleViewer}, nil
	})
	plain := authFunc(func(context.Context, string) (Principal, error) {
		return Principal{}, errors.New("backend down")
	})
	ctx := t.Context()

	if p, err := Chain(noMatch, nil, ok).Authenticate(ctx, "t"); err != nil || p.Subject != "x" {
		t.Errorf("noMatch, ok: %v, %v", p, err)
	}
	if _, err := Chain(expired, ok).Authenticate(ctx, "t"); !errors.Is(err, ErrUnauthenticated) || errors.Is(err, ErrNoMatch) || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired stops the chain with its own reason: %v", err)
	}
	if _, err := Chain(noMatch, noMatch).Authenticate(ctx, "t"); !errors.Is(err, ErrNoMatch) || !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("nothing recognises: %v", err)
	}
	if _, err := Chain(plain).Authenticate(ctx, "t"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("a foreign error must still read as unauthenticated: %v", err)
	}
	if _, err := Chain().Authenticate(ctx, "t"); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("empty chain: %v", err)
	}
}
