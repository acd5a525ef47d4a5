/**
 * `@rotor-dev/keyring`: use credentials that rotor rotates in a Node
 * application without a restart and without failed requests.
 *
 * A {@link Keyring} holds one secret's key set (current, previous until it
 * expires, next) and swaps it atomically when a source delivers a new one:
 *
 * - the environment `rotor run` sets, at start (`@rotor-dev/keyring/env`);
 * - the env file `rotor run --mode signal` rewrites, on its signal
 *   ({@link reloadOnSignal});
 * - the watch stream of `rotor serve`, pushed at promote ({@link Watcher}).
 *
 * {@link healthHandler} and {@link healthResponse} report the key ids in
 * use in the format rotor's verify step reads. The other entry points:
 * `@rotor-dev/keyring/clerk` (a `@clerk/backend` client that falls back
 * from the current to the previous key), `@rotor-dev/keyring/nextjs` and
 * `@rotor-dev/keyring/express` (middleware and health routes).
 *
 * Key values never appear in what this package prints, logs, throws or
 * reports: a {@link Key} shows itself as its id.
 *
 * @example
 * ```ts
 * import { Keyring, reloadOnSignal, healthHandler } from "@rotor-dev/keyring";
 * import { readKeySet } from "@rotor-dev/keyring/env";
 *
 * const keyring = new Keyring(readKeySet("CLERK_SECRET_KEY"));
 * reloadOnSignal(keyring, { envFile: process.env.ROTOR_ENV_FILE!, name: "CLERK_SECRET_KEY" });
 * const health = healthHandler(keyring); // GET /healthz for rotor's `consumers:`
 * ```
 *
 * @packageDocumentation
 */
export {
  Key,
  Keyring,
  KeyringError,
  keyId,
  toKeySet,
  fallbackKey,
  sameKeySet,
  validKeyId,
  KEY_ID_LENGTH,
  type KeySet,
  type KeySetInit,
  type KeyInit,
  type KeyringOptions,
  type KeyringErrorCode,
  type ChangeListener,
  type Health,
  type HealthKeyIds,
} from "./keyring.js";
export { healthHandler, healthResponse, resolveKeyring, type KeyringRef } from "./health.js";
export { reloadOnSignal, type ReloadOptions, type Reloader } from "./reload.js";
export { Watcher, WATCH_DEFAULTS, decodeWatchEvent, type WatchOptions, type WatchEvent, type WatchKey } from "./watch.js";
export { readKeySet } from "./readenv.js";
export { EnvError, parseEnvFile, type EnvKeyOptions, type KeyFormat } from "./envvars.js";
