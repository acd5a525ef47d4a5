// Package authz decides who may do what through rotor's API: it turns a
// bearer credential into a [Principal] (an identity for the audit log and
// a [Role]) and answers, from a single table, whether that principal may
// perform an [Action] on a secret ([Allowed]).
//
// # Roles
//
//	role    list status rotate rollback stage revoke audit watch metrics notify
//	admin    ✓     ✓      ✓      ✓        ✓     ✓      ✓     ✓     ✓       ✓
//	ci       ✓     ✓      ✓      ✓        ✓     ✓                          ✓
//	viewer   ✓     ✓                                   ✓           ✓
//	app                                                      ✓
//
// Only watch discloses secret values; status and audit show key ids;
// notify (a secret changed in the store: push it to the watchers now)
// discloses and changes nothing.
// A principal's [Principal.Secrets] narrows the per-secret actions (status,
// rotate, rollback, stage, revoke, watch, notify) to the secrets listed; an app
// must be granted its secrets explicitly, every other role with an empty
// list may act on all of them. A principal without a role (an OIDC token
// that no rule matched) is authenticated, so its refusals are audited with
// its identity, but may do nothing.
//
// # Tokens
//
// [TokenAuthenticator] accepts the API tokens listed in the configuration,
// which holds only their [HashToken] ("sha256:<hex>"), never the tokens.
// Tokens are random ([NewToken]), so a plain SHA-256 suffices, and a
// presented token's hash is compared with every configured hash in constant
// time. The audit identity of a token is "token:<name>".
//
// # GitHub Actions OIDC
//
// [OIDCVerifier] accepts ID tokens from GitHub Actions (or another OIDC
// issuer): RS256 or ES256 signatures only ("none" and HMAC algorithms are
// refused before anything else is looked at), by a key from the issuer's
// JWKS, which is found through <issuer>/.well-known/openid-configuration,
// cached, and fetched again when a token names a key it does not hold (at
// most once per [OIDCConfig].MinRefreshInterval) and when the cached keys
// are older than [OIDCConfig].CacheTTL (the old keys stay in use while the
// issuer cannot be reached). Only RSA keys of 2048 bits or more and P-256
// keys are used. The iss claim must equal the configured issuer exactly,
// aud must contain the configured audience, and exp (required), nbf and
// iat are checked with a clock-skew tolerance.
//
// The protocol is maintained libraries' work: discovery and the remote key
// set (cache, refetch on an unknown key, one fetch shared by concurrent
// callers, signature verification) are github.com/coreos/go-oidc/v3's, and
// the registered claims are checked by github.com/go-jose/go-jose/v4/jwt.
// This package adds the rules above that go-oidc leaves out (a refetch
// rate limit, a cache lifetime, the key filter, bounded documents) and the
// mapping of GitHub's claims to roles.
//
// The audience does not restrict who can obtain a token: any workflow in
// any repository on GitHub can ask for a token with any audience. What
// restricts access are the [OIDCRule]s, which match the repository (better:
// its never-reused repository_id), ref, environment and workflow claims and
// give a role to the first token they match. Every rule must pin one
// repository literally (repository, repository_id, or a sub pattern
// "repo:OWNER/NAME:…" with no wildcard in OWNER/NAME); wildcards are
// allowed after it (ref, the rest of sub). The audit identity of a GitHub
// token is "ci:github:<repository>:<workflow>#<run_id>", the same form
// audit.DetectInitiator gives CLI runs inside GitHub Actions.
//
// # Errors
//
// Every authentication failure wraps [ErrUnauthenticated]; authenticators
// that do not recognise a credential also wrap [ErrNoMatch], which lets
// [Chain] try tokens, then OIDC issuers, and report the precise reason a
// credential was refused. No error ever contains a credential.
package authz
