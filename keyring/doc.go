// Package keyring is the SDK applications import to use credentials that
// rotor rotates, without a restart and without failed requests while a
// rotation is under way.
//
// A [Keyring] holds one secret's key [Set] (the current key, the previous
// key that stays valid until its ExpiresAt, and a pre-staged next key)
// behind an atomic pointer. [Keyring.Current] is lock-free and does not
// allocate, so applications call it for every use instead of caching a key.
// The keyring refreshes the set from a [Source], either on demand
// ([Keyring.Refresh]), by polling ([Keyring.Run], [Keyring.Start]), or when
// a set is pushed to it ([Keyring.Update]). A refresh that fails, or that
// yields a set without a current key, never replaces the set: the keyring
// keeps its last good keys and reports the error through [Keyring.Err] and
// [WithErrorHandler]. [Keyring.OnChange] callbacks see every change.
//
// Expiry is judged with the keyring's clock ([WithClock]): a previous key
// past its ExpiresAt is neither used as a fallback nor accepted by
// verification.
//
// # Sources
//
//   - [EnvSource] reads the environment variables `rotor run` sets for the
//     process it runs, and [EnvFileSource] the env file it rewrites in
//     signal mode (see "Environment variables").
//   - [Watcher] follows rotor's watch endpoint (`rotor serve`), which
//     pushes every new set as it is stored.
//   - [StaticSource] serves a fixed set, for tests and examples.
//   - The storesource package of rotor's main module
//     (github.com/rotor-dev/rotor/storesource) reads a secret straight from
//     a rotor store: the file store, Vault KV v2, AWS Secrets Manager. It is
//     not part of this module because it needs the stores' client
//     libraries; this module depends on the standard library only.
//
// Any source that can tell cheaply whether the set changed implements
// [Versioner], and polling then loads only when it did. A source that
// pushes changes (such as [Watcher]) calls [Keyring.Update] with each new
// set.
//
// # Environment variables
//
// `rotor run` hands a process its keys in environment variables; [EnvVars]
// writes them and [EnvSource] reads them, and this is the whole format
// (other SDKs, such as the Node package, implement exactly this). For a
// secret whose env name is NAME (the secret's env setting in rotor.yaml;
// by default its name in upper case with "-" and "." replaced by "_", so
// clerk-secret-key becomes CLERK_SECRET_KEY) there are five variables,
// always all five, written in this order:
//
//	NAME                   the current key
//	NAME_PRIMARY           the current key (the same value)
//	NAME_SECONDARY         the previous key while it is valid, else empty
//	NAME_KEY_ID            the id of the current key
//	NAME_SECONDARY_KEY_ID  the id of the previous key, else empty
//
// Values are the keys themselves, neither quoted nor encoded. A reader
// trims white space around every value; takes the current key from
// NAME_PRIMARY, or from NAME when NAME_PRIMARY is empty or unset (so an
// application also runs with only NAME set, without rotor run); takes the
// previous key from NAME_SECONDARY unless it is empty or equal to the
// current key; and takes the ids from the two _KEY_ID variables, deriving
// an id (see "Key ids" below) only where that variable is empty. No
// current key is an error wrapping [ErrNoCurrentKey]. The environment
// carries neither expiry nor the next key: the writer leaves expired keys
// out ([Set.Unexpired]) and writes the variables again whenever the set
// changes, restarting the process or signalling it to re-read them.
//
// In signal mode, `rotor run --env-file FILE` writes the same variables to
// FILE ([EnvFile]) before it starts the process and before every signal:
// mode 0600, replaced atomically (rename), a first line "# " and a comment,
// then one line per variable in the order above, NAME="value", the value a
// Go double-quoted string as strconv.Quote writes it (\" and \\ for a
// quote and a backslash, Go escapes such as \n and \x00 for characters
// that are not printable). A reader ([ParseEnvFile], [EnvFileSource])
// skips blank lines and lines starting with "#".
//
// # Key ids
//
// Key ids are public identifiers of key values, safe to log and report.
// Sets from rotor (a store, the watch endpoint, the variables of rotor run)
// carry the ids rotor computed: keyid.Of, an
// HMAC-SHA256 of the value under the deployment's salt, as 16 hex
// characters. [EnvSource] computes the same ids for keys that come without
// one when given the salt with [WithSalt]. Without a salt, ids are unsalted: the first 16 hex characters
// of the SHA-256 of the value, which an operator can reproduce with
// `printf %s "$KEY" | sha256sum | cut -c1-16`, and which differ from the
// ids rotor prints. A [Key] formats itself as its id only, whatever the
// fmt verb, in slog and in JSON, so printing a key never leaks its value.
//
// # Outgoing calls
//
// [Keyring.Transport] wraps an [http.RoundTripper]: requests carry the
// current key as a bearer token, and a 401 answer is retried once with the
// previous key when the request is safe to send again (an idempotent
// method or an Idempotency-Key header, and a body that can be recreated).
// [Keyring.Do] does the same for any client library: it calls a function
// with the current key and, when the function reports an authentication
// failure (an error wrapping [ErrUnauthorized] by default), once more with
// the previous key.
//
// # Incoming signatures
//
// For HMAC-SHA256 signatures the application makes and checks itself
// (webhooks between its own services, signed tokens), [Keyring.Sign] signs
// with the current key and names the key in the signature, so that
// [Keyring.Verify] checks it with a single MAC computation under whichever
// valid key made it: current, previous until it expires, or next. For
// signatures that do not name their key, [Keyring.VerifyAny] tries every
// valid key. All comparisons are constant-time, and failures wrap
// [ErrInvalidSignature] (and [ErrUnknownKey] or [ErrExpiredKey] where they
// apply).
//
// # Health
//
// [Keyring.HealthHandler] serves a JSON [Health] report with the ids (never
// the values) of the keys in use, the set's version, the outcome of the
// last refresh and the keyring's refresh interval. Rotor's verify step
// reads key_ids.current from every consumer to tell which ones adopted a
// new key, and refresh_interval_seconds to know how long to wait for them;
// fields are only ever added.
package keyring
