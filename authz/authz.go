package authz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Role is what a [Principal] may do. The zero Role may do nothing: it is
// what an authenticated caller has when no rule gave it a role.
type Role string

// The roles. See the package documentation for what each may do.
const (
	RoleAdmin  Role = "admin"
	RoleCI     Role = "ci"
	RoleViewer Role = "viewer"
	RoleApp    Role = "app"
)

// Roles lists every role, most privileged first.
var Roles = []Role{RoleAdmin, RoleCI, RoleViewer, RoleApp}

// ParseRole validates a role name as written in the configuration.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want admin, ci, viewer or app)", s)
}

// Action is something a caller asks rotor's API to do.
type Action string

// The actions of rotor's API, one per endpoint.
const (
	// ActionList lists the managed secrets (names only).
	ActionList Action = "list"
	// ActionStatus reads a secret's status: key ids, expiry, rotation
	// state; never values.
	ActionStatus Action = "status"
	// ActionRotate starts (or resumes) a rotation.
	ActionRotate Action = "rotate"
	// ActionRollback makes the previous key current again.
	ActionRollback Action = "rollback"
	// ActionStage stores a pre-staged next key. The request carries a
	// secret value.
	ActionStage Action = "stage"
	// ActionRevoke revokes expired (or, forced, unexpired) keys.
	ActionRevoke Action = "revoke"
	// ActionAudit reads the audit log.
	ActionAudit Action = "audit"
	// ActionWatch reads a secret's key set, values included, and follows
	// its changes. It is the only action that discloses secret values.
	ActionWatch Action = "watch"
	// ActionMetrics reads the Prometheus metrics.
	ActionMetrics Action = "metrics"
	// ActionNotify tells the server that a secret may have changed in the
	// store (a rotation by the CLI or another replica), so that its watch
	// streams get the new set at once. It discloses and changes nothing,
	// but makes the server read the store, so only those who may change a
	// secret may send it.
	ActionNotify Action = "notify"
)

// Actions lists every action.
var Actions = []Action{ActionList, ActionStatus, ActionRotate, ActionRollback, ActionStage, ActionRevoke, ActionAudit, ActionWatch, ActionMetrics, ActionNotify}

// PerSecret reports whether a concerns one named secret (and is therefore
// limited by [Principal.Secrets]) rather than the deployment as a whole.
func (a Action) PerSecret() bool {
	switch a {
	case ActionStatus, ActionRotate, ActionRollback, ActionStage, ActionRevoke, ActionWatch, ActionNotify:
		return true
	}
	return false
}

// grants is the single table of what each role may do. Nothing else in
// rotor decides access.
var grants = map[Role][]Action{
	RoleAdmin:  Actions,
	RoleCI:     {ActionList, ActionStatus, ActionRotate, ActionRollback, ActionStage, ActionRevoke, ActionNotify},
	RoleViewer: {ActionList, ActionStatus, ActionAudit, ActionMetrics},
	RoleApp:    {ActionWatch},
}

// Principal is an authenticated caller.
type Principal struct {
	// Subject identifies the caller in the audit log, e.g.
	// "token:deploy-bot" or
	// "ci:github:org/repo:deploy.yml#1234567890".
	Subject string
	// Role is what the caller may do; empty when authentication succeeded
	// but no rule gave it a role (every request is then refused).
	Role Role
	// Secrets limits per-secret actions to these secret names. For
	// RoleApp an empty list grants no secret; for every other role it
	// grants all of them.
	Secrets []string
}

// Grants reports whether p's secret list covers the secret called name.
// It says nothing about the role; see [Allowed].
func (p Principal) Grants(name string) bool {
	if len(p.Secrets) == 0 {
		return p.Role != RoleApp && p.Role != ""
	}
	return slices.Contains(p.Secrets, name)
}

// Allowed reports whether p may perform a on the secret called secret.
// Actions that concern no secret ([Action.PerSecret] is false) ignore
// secret; per-secret actions need a non-empty secret covered by
// [Principal.Grants].
func Allowed(p Principal, a Action, secret string) bool {
	if !slices.Contains(grants[p.Role], a) {
		return false
	}
	if !a.PerSecret() {
		return true
	}
	return secret != "" && p.Grants(secret)
}

// ErrUnauthenticated is wrapped by every error an [Authenticator] returns:
// the credential is missing, malformed, unknown, expired or not signed by a
// trusted key. The API answers 401.
var ErrUnauthenticated = errors.New("unauthenticated")

// ErrNoMatch is wrapped (together with [ErrUnauthenticated]) by an
// [Authenticator] that does not recognise a credential at all (an unknown
// token, or a token that is not a JWT for an OIDC verifier), so that
// [Chain] can try the next one and report the most specific failure.
var ErrNoMatch = errors.New("credential not recognised")

// Authenticator turns a bearer token into a [Principal].
type Authenticator interface {
	// Authenticate returns the principal token identifies. Errors wrap
	// ErrUnauthenticated, and also ErrNoMatch when the authenticator does
	// not recognise the token. They never contain the token.
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// Chain returns an [Authenticator] that tries each of auths in order. The
// first success wins; the first failure that is not [ErrNoMatch] (a JWT
// that did verify as a JWT but has expired, say) ends the search and is
// returned; when no authenticator recognises the token the result wraps
// ErrNoMatch. Nil entries are skipped.
func Chain(auths ...Authenticator) Authenticator {
	return chain(slices.DeleteFunc(slices.Clone(auths), func(a Authenticator) bool { return a == nil }))
}

type chain []Authenticator

// Authenticate tries each authenticator in turn; see Chain.
func (c chain) Authenticate(ctx context.Context, token string) (Principal, error) {
	var reasons []string
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrNoMatch) {
			if !errors.Is(err, ErrUnauthenticated) {
				err = &authError{reason: err.Error()}
			}
			return Principal{}, err
		}
		reasons = append(reasons, strings.TrimPrefix(err.Error(), "unauthenticated: "))
	}
	if len(reasons) == 0 {
		reasons = append(reasons, "no authenticator configured")
	}
	return Principal{}, &authError{reason: strings.Join(reasons, "; "), noMatch: true}
}
