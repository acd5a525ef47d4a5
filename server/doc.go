// Package server is rotor's HTTP API, served by `rotor serve` and
// `rotor daemon`: status and audit for people and dashboards, rotate,
// rollback, stage and revoke for CI pipelines, and a watch stream that
// pushes key sets to applications using the keyring SDK.
//
// # Endpoints
//
//	GET  /v1/secrets                  list      names the caller may see
//	GET  /v1/secrets/{name}           status    key ids, expiry, rotation state
//	POST /v1/secrets/{name}/rotate    rotate    body: {} or empty
//	POST /v1/secrets/{name}/rollback  rollback  body: {} or empty
//	POST /v1/secrets/{name}/stage     stage     body: {"value":"…","meta":{…}}
//	POST /v1/secrets/{name}/revoke    revoke    body: {"force":true} or empty
//	POST /v1/secrets/{name}/notify    notify    body: {} or empty; 202: watchers get the stored set now
//	GET  /v1/audit?n=100              audit     the last n records (1-1000)
//	GET  /v1/watch/{name}             watch     server-sent events, values included
//	GET  /metrics                     metrics   the Prometheus handler, see [WithMetrics]
//	GET  /healthz                     —         200 while the process serves
//	GET  /readyz                      —         200 when the store answers, else 503
//	GET  /v1/openapi.json             —         the OpenAPI 3 document of this API
//
// Bodies are the documents of package api, the same the CLI prints with
// -o json, described by the OpenAPI document api/openapi.json.
//
// Every endpoint except the last three requires "Authorization: Bearer
// <token>", an API token or a GitHub Actions OIDC token, and the role that
// package authz grants the action named in the second column. A request
// without a valid credential is answered 401, one outside the caller's role
// or secrets 403, and both are recorded in the audit log as denied, with
// action "api.<action>" and the caller's identity as initiator
// ("unauthenticated:<address>" when there is none; the identity an
// unverified JWT claims is added to the detail). Operations record their
// own steps through the [Backend], under the caller's identity.
//
// Refusals are bounded so that a flood cannot fill the audit log's disk
// ([WithDenialLimits]): a caller's first refusal in each window is
// recorded in full and the rest in one summary record with their count; a
// caller refused too often is answered 429 too_many_requests with
// Retry-After. A caller is its address when it sent no valid credential,
// else its identity; allowed requests are never limited. Every refusal
// reaches the observer ([RequestInfo].Denial) for metrics.
//
// Request bodies are at most 64 KiB of UTF-8: one JSON object with no
// unknown fields, no key given twice and no key spelled in another case
// than its field (encoding/json would take the last duplicate and match
// "VALUE" to "value"; rotor refuses both, 400). A staged value must pass
// store.ValidateValue, the rule `rotor stage` applies too. Rotate, rollback, stage and revoke run to completion even when
// the client hangs up ([WithOperationTimeout]).
//
// # Status page
//
// When the backend is an [Overviewer], the server also serves a status
// page for people, server-rendered HTML with no script:
//
//	GET  /                         the secrets (key ids, age, next rotation, previous
//	                               expiry, issuer expiry, operation in progress with step
//	                               and lease) and the last audit records with the chain's
//	                               state ([Server.AuditVerified])
//	GET  /login, POST /login       log in with an API token
//	POST /logout                   end the session
//	GET  /secrets/{name}/{op}      "Rotate X? [Confirm]" (op: rotate, rollback)
//	POST /secrets/{name}/{op}      do it
//	GET  /page.css                 the style sheet
//
// A login checks the token with the same [authz.Authenticator] as the API
// and starts a session held in memory; the browser gets a random 256-bit
// session id in an HttpOnly, SameSite=Strict cookie (Secure, with the
// __Host- prefix, when the browser speaks https), never the token.
// Sessions last [DefaultSessionTTL] from login, are not extended by use,
// end at logout and with the process, and are not shared between
// replicas ([WithPageSessions]). The page applies the API's role rules
// through [authz.Allowed]: a viewer sees the table and the audit trail, a
// ci token the table and the buttons, an admin all of it; the role
// is checked again when a form is posted. Every form carries a CSRF
// token, per session (the login form's is a double-submitted cookie) and
// checked in constant time, and cross-origin posts are refused
// (http.CrossOriginProtection) before that. Refusals are audited and
// rate limited like the API's, with action "page.<what>" (page.login,
// page.rotate, …); logins and logouts are audited as succeeded. Every
// answer carries a Content-Security-Policy of default-src 'self', no
// script and frame-ancestors 'none', and Cache-Control: no-store.
//
// # Errors
//
// Errors are JSON, {"error":{"code":"…","message":"…"}}, with one of the
// stable Code… constants; the sentinel errors of packages rotation, store
// and provider map to them (rotation_in_progress 409, nothing_to_roll_back
// 409, not_expired 409, key_rejected 422, rolled_back 502, …). Messages
// never carry secret values: errors the server does not recognise are
// answered "internal" and only logged, and a staged value is redacted from
// any message as a second line of defence.
//
// # Watch
//
// GET /v1/watch/{name} streams text/event-stream. The first event is the
// secret's current key set, then one event follows every change:
//
//	event: keys
//	id: 42
//	data: {"secret":"clerk","version":"42","seq":42,
//	       "current":{"id":"…","value":"…"},
//	       "previous":{"id":"…","value":"…","expires_at":"2026-…Z"}}
//
// seq orders sets across reconnections and replicas (see [KeySet]); a
// client keeps the set with the highest seq it has seen. Comment lines
// (": heartbeat") are sent while nothing changes ([WithHeartbeat]). All
// watchers of a secret share one reader that asks the backend every
// [WithWatchInterval] (only for the version when the backend is a
// [Versioner], the keys when it moved), and at once after an operation
// through this server, a call to [Server.Notify] or a notify request: the
// load on the store grows with the number of watched secrets, never with
// the number of watchers. A rotation by any other process reaches the
// watchers at once when that process sends notify (the CLI does, see the
// README) or when rotor serve sees the change itself (the file store's
// files are watched); otherwise at the next poll. Each stream is audited when it opens
// (action api.watch, status succeeded); a stream that cannot be audited
// does not open.
//
// # Transport security
//
// [ListenConfig.Listen] serves TLS when a certificate is configured (and
// reloads it when the files change) and refuses plain HTTP on anything but
// loopback unless told that a proxy terminates TLS. Independently, the two
// requests that carry values, stage and watch, are refused with
// tls_required when they arrive in plain HTTP from a non-loopback peer,
// unless [WithPlaintextValues] is set. Bearer tokens travel in every
// request: never expose a plain-HTTP listener.
//
// # Metrics
//
// The server exposes no metrics itself: [WithMetrics] mounts the daemon's
// Prometheus handler at /metrics, for the admin and viewer roles or, with
// open set, for anybody (metrics hold key ids and counts, no values), and
// [WithObserver] reports every request (route, status, role, duration).
package server
