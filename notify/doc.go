// Package notify tells people and systems what rotor did: a Slack channel
// (incoming webhooks) or any HTTP receiver (CloudEvents 1.0), for the
// kinds of event each target selects ([Kinds]): rotated, rotation_failed,
// rolled_back, action_required, revoke_due, revoked, audit_chain_broken.
//
// # Events
//
// A [Notifier] subscribes to the rotation engine's audit events through
// [Notifier.Recorder], so every command, the API and the daemon notify
// alike without calling it themselves; at most one notification of a kind
// is sent per operation. The process that verifies the audit chain calls
// [Notifier.Notify] itself for [KindAuditChainBroken]. A notification
// carries the secret's name, key ids, the operation id, the initiator, a
// summary and, for action_required, the operator's steps: what the audit
// record carries, never a secret value.
//
// # Payloads
//
// A slack target receives a [SlackMessage] (text plus Block Kit sections,
// Content-Type application/json), as Slack's incoming webhooks take it. A
// webhook target receives a [CloudEvent] in structured mode: the body is
// the event as JSON, Content-Type [ContentTypeCloudEvents], with the
// required attributes specversion "1.0", id (unique per delivery), source
// (Options.Source) and type ([TypePrefix] + kind), and subject (the
// secret), time and data ([Data]).
//
// # Signatures
//
// A webhook target with a signing key signs every delivery as the
// Standard Webhooks specification describes: headers webhook-id (the
// CloudEvent id), webhook-timestamp (Unix seconds) and webhook-signature,
// "v1," followed by the base64 HMAC-SHA256, keyed with the signing key, of
// "<webhook-id>.<webhook-timestamp>.<body>". The key is 32 random bytes
// that rotor creates, the first time, in the file the target names
// ("whsec_" and the key in base64, mode 0600; [LoadOrCreateKey]), or that
// the operator provides in an environment variable. A receiver recomputes
// the HMAC over the raw body, compares in constant time and refuses
// timestamps outside a few minutes ([Verify] does exactly that; Standard
// Webhooks libraries exist for other languages). The signature proves the
// delivery came from a holder of the key and was not altered; the
// timestamp check and the unique id let a receiver refuse replays.
//
// # Delivery
//
// Notify never blocks and never fails an operation. Each delivery to each
// target runs in the background and is retried with exponential backoff
// and jitter (github.com/cenkalti/backoff/v5) after a network error, a
// timeout, HTTP 408, 429 (waiting as long as Retry-After asks) or 5xx;
// other 4xx answers are final. A delivery ends when the target accepts it
// (2xx), after Options.Attempts tries, or when its time is spent:
// Options.RetryFor in a long-running process (daemon, serve),
// Options.ExitWait in a command that ends, whose exit [Notifier.Close]
// holds for at most that long. Deliveries are not persisted: a process
// that stops gives up those still retrying. Every delivery that ends,
// delivered or given up, is handed to Deps.Audit as a [Delivery]; rotor
// appends it to the audit log as a record with action [ActionDelivery]
// ("notification"), status succeeded or failed, the secret and key id of
// the event, and [Delivery.Detail]: the kind, the target, the delivery id
// and the tries. (The package does not import the audit log, so that
// config, which decodes [Options], does not either.)
//
// Errors never repeat a target's URL: a Slack webhook URL is a secret,
// and url_env keeps it out of rotor.yaml.
package notify
