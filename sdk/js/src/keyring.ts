import { createHash, createHmac } from "node:crypto";

/** Number of hex characters in a key id, as rotor's `keyid.Len`. */
export const KEY_ID_LENGTH = 16;

/** The longest key id a key set accepts (as the Go keyring's `maxIDLen`). */
const MAX_ID_LENGTH = 128;

const inspectSymbol = Symbol.for("nodejs.util.inspect.custom");

/**
 * Conditions a caller can act on, as the `code` of a {@link KeyringError}.
 *
 * - `no_current_key`: a key set (from the environment, an env file, the
 *   watch stream or {@link Keyring.update}) has no current key.
 * - `invalid_key_set`: a key set is otherwise unusable (an empty value, a
 *   malformed key id, two keys sharing an id).
 * - `missing_key` / `malformed_key`: an environment variable is missing or
 *   does not hold a key of the expected shape ({@link EnvError}).
 * - `env_file`: the env file `rotor run --mode signal` writes could not be
 *   read or parsed.
 * - `watch`: the watch stream of `rotor serve` failed or sent a bad event.
 * - `invalid_option`: a {@link KeyringOptions} value is out of range.
 */
export type KeyringErrorCode =
  | "no_current_key"
  | "invalid_key_set"
  | "missing_key"
  | "malformed_key"
  | "env_file"
  | "watch"
  | "invalid_option";

/**
 * The error every part of this package throws or reports. Its message
 * names variables, files and key ids, never a key value.
 */
export class KeyringError extends Error {
  /** What went wrong, for programs to act on. */
  readonly code: KeyringErrorCode;

  /**
   * @param code - what went wrong
   * @param message - a description naming key ids and variables, never values
   * @param options - the underlying cause, if any
   */
  constructor(code: KeyringErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KeyringError";
    this.code = code;
  }
}

/**
 * The public identifier of a key value, as rotor computes it.
 *
 * With the deployment's salt (the audit salt rotor was set up with) it is
 * rotor's own id: HMAC-SHA256(salt, value), hex, first 16 characters (Go's
 * `keyid.Of`). Without a salt it is the first 16 hex characters of the
 * SHA-256 of the value, which an operator can reproduce with
 * `printf %s "$KEY" | sha256sum | cut -c1-16` (the Go keyring's unsalted
 * id). Ids are safe to log and report; values never are.
 *
 * @param value - the key value
 * @param salt - the deployment's salt, when the app holds it
 */
export function keyId(value: string, salt?: Uint8Array | string): string {
  const digest =
    salt === undefined ? createHash("sha256").update(value) : createHmac("sha256", salt).update(value);
  return digest.digest("hex").slice(0, KEY_ID_LENGTH);
}

/** Reports whether id can appear in a health report and a signature header. */
export function validKeyId(id: string): boolean {
  if (id.length === 0 || id.length > MAX_ID_LENGTH) return false;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c <= 0x20 || c > 0x7e || c === 0x2c) return false;
  }
  return true;
}

/**
 * One credential of a {@link KeySet}. The value is the secret; the id is
 * its public name and the only part a Key shows when it is printed,
 * logged, interpolated into a string or serialised to JSON, so that a key
 * that ends up in a log line does not leak.
 */
export class Key {
  /** Identifies the key in logs, health reports and errors. */
  readonly id: string;
  /**
   * When a previous (or next) key stops being valid; undefined when it
   * does not expire. Ignored on the current key.
   */
  readonly expiresAt: Date | undefined;
  readonly #value: string;

  /**
   * @param value - the secret
   * @param id - its key id ({@link keyId} when unknown)
   * @param expiresAt - when it stops being valid, if it does
   */
  constructor(value: string, id: string, expiresAt?: Date) {
    this.#value = value;
    this.id = id;
    this.expiresAt = expiresAt;
    Object.freeze(this);
  }

  /** The secret itself. Pass it to the API that needs it, and nowhere else. */
  get value(): string {
    return this.#value;
  }

  /** Reports whether the key has an expiry that is not after `now` (ms since the epoch). */
  expired(now: number): boolean {
    return this.expiresAt !== undefined && now >= this.expiresAt.getTime();
  }

  /** The key id, never the value. */
  toString(): string {
    return this.id;
  }

  /** The JSON form: the id and expiry, never the value. */
  toJSON(): { id: string; expires_at?: string } {
    return this.expiresAt ? { id: this.id, expires_at: this.expiresAt.toISOString() } : { id: this.id };
  }

  /** How `console.log` and `util.inspect` show a key: by id. */
  [inspectSymbol](): string {
    return `Key { id: '${this.id}' }`;
  }
}

/**
 * The key set a {@link Keyring} holds: the current key, the key it replaced
 * (valid until its expiresAt) and a pre-staged next key. Key sets are
 * frozen; a change is a new set.
 */
export interface KeySet {
  /** The key to call and sign with. */
  readonly current: Key;
  /** The key current replaced; still accepted and used as a fallback until it expires. */
  readonly previous?: Key | undefined;
  /** A pre-staged key, accepted by verification so peers that adopt it first are not rejected. */
  readonly next?: Key | undefined;
  /** The stored state the set came from (the store version); "" when the source has none. */
  readonly version: string;
}

/** A key as a source describes it: a value, and optionally its id and expiry. */
export interface KeyInit {
  /** The secret. */
  value: string;
  /** Its key id; computed with {@link keyId} (unsalted) when absent. */
  id?: string | undefined;
  /** When it stops being valid (a Date, an RFC 3339 string or ms since the epoch). */
  expiresAt?: Date | string | number | undefined;
}

/** A key set as a source describes it; {@link toKeySet} checks it. */
export interface KeySetInit {
  /** The current key. Required. */
  current: KeyInit | Key;
  /** The previous key, if any. */
  previous?: KeyInit | Key | undefined;
  /** The next key, if any. */
  next?: KeyInit | Key | undefined;
  /** The version of the stored state. */
  version?: string | undefined;
}

function toDate(v: Date | string | number | undefined, slot: string, id: string): Date | undefined {
  if (v === undefined || v === "") return undefined;
  const d = v instanceof Date ? new Date(v.getTime()) : new Date(v);
  if (Number.isNaN(d.getTime())) {
    throw new KeyringError("invalid_key_set", `${slot} key ${id} has an invalid expiry`);
  }
  // Go's zero time ("0001-01-01T00:00:00Z") means no expiry.
  return d.getUTCFullYear() <= 1 ? undefined : d;
}

function toKey(k: KeyInit | Key, slot: string): Key {
  if (k instanceof Key) {
    if (k.value === "") throw new KeyringError("invalid_key_set", `${slot} key ${k.id} has an empty value`);
    return k;
  }
  if (typeof k.value !== "string" || k.value === "") {
    throw new KeyringError(
      slot === "current" ? "no_current_key" : "invalid_key_set",
      slot === "current" ? "no current key" : k.id ? `${slot} key ${k.id} has an empty value` : `${slot} key has an empty value`,
    );
  }
  const id = k.id === undefined || k.id === "" ? keyId(k.value) : k.id;
  if (!validKeyId(id)) {
    throw new KeyringError(
      "invalid_key_set",
      `${slot} key has an invalid id ${JSON.stringify(id.slice(0, MAX_ID_LENGTH))}: want 1-${MAX_ID_LENGTH} printable characters without spaces or commas`,
    );
  }
  return new Key(k.value, id, toDate(k.expiresAt, slot, id));
}

/**
 * Checks a key set and returns it frozen, with missing key ids filled in
 * (unsalted, see {@link keyId}). The rules are the Go keyring's: a current
 * key with a value is required, every key present has a value and a valid
 * id, and two slots that share an id hold the same value.
 *
 * @throws {@link KeyringError} with code `no_current_key` or `invalid_key_set`;
 * the message never contains a value.
 */
export function toKeySet(init: KeySetInit | KeySet): KeySet {
  if (init === null || typeof init !== "object" || init.current === undefined || init.current === null) {
    throw new KeyringError("no_current_key", "no current key");
  }
  const current = toKey(init.current, "current");
  const previous = init.previous ? toKey(init.previous, "previous") : undefined;
  const next = init.next ? toKey(init.next, "next") : undefined;
  const slots: [string, Key | undefined][] = [
    ["current", current],
    ["previous", previous],
    ["next", next],
  ];
  for (let i = 0; i < slots.length; i++) {
    const [name, key] = slots[i]!;
    if (!key) continue;
    for (const [otherName, other] of slots.slice(0, i)) {
      if (other && other.id === key.id && other.value !== key.value) {
        throw new KeyringError("invalid_key_set", `${otherName} and ${name} keys share the id ${key.id} but differ`);
      }
    }
  }
  return Object.freeze({ current, previous, next, version: init.version ?? "" });
}

function sameKey(a: Key | undefined, b: Key | undefined): boolean {
  if (!a || !b) return a === b;
  return a.value === b.value && a.id === b.id && a.expiresAt?.getTime() === b.expiresAt?.getTime();
}

/** Reports whether two key sets hold the same keys and version. */
export function sameKeySet(a: KeySet, b: KeySet): boolean {
  return (
    a.version === b.version &&
    sameKey(a.current, b.current) &&
    sameKey(a.previous, b.previous) &&
    sameKey(a.next, b.next)
  );
}

/**
 * The fallback key of a set at `now`: the previous key while it is valid
 * and differs from the current one.
 */
export function fallbackKey(set: KeySet, now: number): Key | undefined {
  const p = set.previous;
  if (!p || p.value === set.current.value || p.expired(now)) return undefined;
  return p;
}

/** Options of {@link Keyring}. */
export interface KeyringOptions {
  /**
   * The clock, in ms since the epoch, used to decide whether a previous
   * key has expired and to time-stamp refreshes. Default `Date.now`.
   */
  now?: () => number;
  /**
   * How often, in ms, something polls for a new set and hands it to this
   * keyring, if anything does; reported as `refresh_interval_seconds` in
   * {@link Keyring.health}, so that rotor's verify step waits at least that
   * long (plus a margin) for this consumer to adopt a new key. Default 0:
   * the keyring is pushed its sets (the env file on a signal, the watch
   * stream) and polls nothing, and rotor waits its `consumer_timeout`.
   */
  refreshIntervalMs?: number;
}

/** Called after every change of a keyring's set, with the old and the new set. */
export type ChangeListener = (oldSet: KeySet, newSet: KeySet) => void;

/**
 * The key ids a {@link Health} report carries: "" for an empty slot.
 */
export interface HealthKeyIds {
  /** The id of the key this process calls and signs with. */
  current: string;
  /** The id of the previous key while it is valid; "" once it expired. */
  previous: string;
  /** The id of the pre-staged next key, if any. */
  next: string;
}

/**
 * The health report, in the JSON shape of the Go keyring's `Health`, which
 * rotor's verify step and adoption-gated revoke read from every consumer
 * listed under `consumers:` (`key_ids.current`). Fields are only ever added.
 */
export interface Health {
  /** "ok" when the last refresh succeeded, "degraded" when it failed (the last good set is still in use). */
  status: "ok" | "degraded";
  /** The ids of the keys in use. */
  key_ids: HealthKeyIds;
  /** The set's version ("" when the source has none). */
  version: string;
  /** When the set was last refreshed successfully (RFC 3339, UTC). */
  last_refresh: string;
  /** The error of the last refresh, "" if it succeeded. Never contains a value. */
  last_error: string;
  /**
   * How often the keyring's set is refreshed by polling, in seconds
   * ({@link KeyringOptions.refreshIntervalMs}); 0 when it is only pushed its
   * sets. Rotor's verify step waits at least this long plus a margin.
   */
  refresh_interval_seconds: number;
}

/**
 * A Keyring holds the key set of one secret and swaps it atomically when
 * a source delivers a new one: the environment at start, the env file
 * `rotor run --mode signal` rewrites ({@link reloadOnSignal}), or the
 * watch stream of `rotor serve` ({@link Watcher}). Read
 * {@link Keyring.current} for every use instead of caching a key.
 *
 * A set that fails validation never replaces the set in use: the keyring
 * keeps its last good keys and reports the error in {@link Keyring.health}.
 *
 * @example
 * ```ts
 * import { Keyring } from "@rotor-dev/keyring";
 * import { readKeySet } from "@rotor-dev/keyring/env";
 *
 * const keyring = new Keyring(readKeySet("CLERK_SECRET_KEY"));
 * keyring.onChange((from, to) => console.log(`key ${from.current} -> ${to.current}`)); // ids only
 * fetch(url, { headers: { Authorization: `Bearer ${keyring.current.value}` } });
 * ```
 */
export class Keyring {
  #set: KeySet;
  #now: () => number;
  #lastRefresh: number;
  #lastError: Error | undefined;
  readonly #refreshIntervalMs: number;
  #listeners = new Set<ChangeListener>();

  /**
   * @param initial - the first key set (see {@link toKeySet})
   * @param options - the clock, the refresh interval to report
   * @throws {@link KeyringError} when initial is not a usable key set, or (`invalid_option`) refreshIntervalMs is negative
   */
  constructor(initial: KeySetInit | KeySet, options: KeyringOptions = {}) {
    this.#now = options.now ?? Date.now;
    const interval = options.refreshIntervalMs ?? 0;
    if (!(Number.isFinite(interval) && interval >= 0)) {
      throw new KeyringError("invalid_option", "refreshIntervalMs: want a finite number >= 0");
    }
    this.#refreshIntervalMs = interval;
    this.#set = toKeySet(initial);
    this.#lastRefresh = this.#now();
  }

  /** The current key. */
  get current(): Key {
    return this.#set.current;
  }

  /** The key set in use (frozen). */
  get set(): KeySet {
    return this.#set;
  }

  /** The previous key while it is valid and differs from the current one: the key to fall back to. */
  get fallback(): Key | undefined {
    return fallbackKey(this.#set, this.#now());
  }

  /** The keyring's clock, in ms since the epoch. */
  now(): number {
    return this.#now();
  }

  /** The error of the last refresh or update, or undefined if it succeeded. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /**
   * Validates `init` and, if it differs from the set in use, swaps it in
   * and calls the change listeners. Returns whether the set changed. An
   * invalid set is refused: the keyring keeps its set, the error is
   * recorded (see {@link Keyring.health}) and thrown.
   *
   * @throws {@link KeyringError} when init is not a usable key set
   */
  update(init: KeySetInit | KeySet): boolean {
    let next: KeySet;
    try {
      next = toKeySet(init);
    } catch (err) {
      this.reportError(err);
      throw err;
    }
    this.#lastError = undefined;
    this.#lastRefresh = this.#now();
    const old = this.#set;
    if (sameKeySet(old, next)) return false;
    this.#set = next;
    for (const f of [...this.#listeners]) {
      try {
        f(old, next);
      } catch (err) {
        // A listener's failure must not undo the swap; surface it.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return true;
  }

  /**
   * Records that a source failed to refresh the set (the server is
   * unreachable, the env file is malformed). The keyring keeps its last
   * good set; {@link Keyring.health} reports "degraded" with the error
   * until the next successful update. Sources call it; applications
   * rarely need to.
   */
  reportError(err: unknown): void {
    this.#lastError = err instanceof Error ? err : new Error(String(err));
  }

  /**
   * Records a successful refresh that brought no new set (a watch stream
   * reconnected to the same set).
   */
  reportOk(): void {
    this.#lastError = undefined;
    this.#lastRefresh = this.#now();
  }

  /**
   * Registers a listener called, synchronously and in registration order,
   * after every change of the set, once the new set is in use. A listener
   * that throws does not stop the change; its error is rethrown
   * asynchronously. Returns a function that unregisters it.
   */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** The health report: key ids, never values. */
  health(): Health {
    const set = this.#set;
    const previous = set.previous && !set.previous.expired(this.#now()) ? set.previous.id : "";
    return {
      status: this.#lastError ? "degraded" : "ok",
      key_ids: { current: set.current.id, previous, next: set.next?.id ?? "" },
      version: set.version,
      last_refresh: new Date(this.#lastRefresh).toISOString(),
      last_error: this.#lastError ? this.#lastError.message : "",
      refresh_interval_seconds: this.#refreshIntervalMs / 1000,
    };
  }
}
