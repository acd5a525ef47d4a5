import { setTimeout as sleep } from "node:timers/promises";

import { createParser } from "eventsource-parser";

import { KeyringError, toKeySet, type KeySet, type Keyring } from "./keyring.js";

/** Defaults of {@link WatchOptions}, the Go keyring's `DefaultWatch…` values. */
export const WATCH_DEFAULTS = Object.freeze({
  /** The first delay before reconnecting, ms. */
  minBackoffMs: 500,
  /** The cap of the delay between reconnections, ms. */
  maxBackoffMs: 30_000,
  /** How long a stream may stay silent before it is presumed dead, ms; rotor sends a heartbeat every 15 s. */
  idleTimeoutMs: 60_000,
});

/** Bounds the size of one event, as the Go watcher does (1 MiB). */
const MAX_EVENT_SIZE = 1 << 20;

/** Options of {@link Watcher}. */
export interface WatchOptions {
  /** The fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
  /** The delay after a failure that follows a working stream, doubling up to maxBackoffMs, with jitter. */
  minBackoffMs?: number;
  /** The cap of the delay between reconnections. */
  maxBackoffMs?: number;
  /** How long a stream may stay silent, heartbeats included, before the watcher reconnects. */
  idleTimeoutMs?: number;
  /** Called with every connection failure and every refused set; the keyring keeps its last good set. */
  onError?: (err: KeyringError) => void;
  /** Permit a plain http URL to a host that is not loopback: the token and the keys would travel in the clear. */
  allowHttp?: boolean;
}

/**
 * One key of a {@link WatchEvent}, as the Go `keyring.WatchKey`.
 */
export interface WatchKey {
  /** The key id. */
  id: string;
  /** The key value. */
  value: string;
  /** RFC 3339; absent when the key does not expire. */
  expires_at?: string;
}

/**
 * The JSON data of a "keys" event on rotor's watch stream
 * (`GET /v1/watch/{name}`, server-sent events), exactly the Go
 * `keyring.WatchEvent` that package server sends. `seq` orders sets
 * across reconnections; the event's SSE id is the same number.
 */
export interface WatchEvent {
  /** The secret's name. */
  secret: string;
  /** The stored version of the set. */
  version: string;
  /** The set's sequence number. */
  seq: number;
  /** The current key. */
  current: WatchKey;
  /** The previous key, if any. */
  previous?: WatchKey;
  /** The next key, if any. */
  next?: WatchKey;
}

function loopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h);
}

function watchError(message: string, cause?: unknown): KeyringError {
  return new KeyringError("watch", `watch: ${message}`, cause === undefined ? undefined : { cause });
}

/** Decodes and checks the data of a keys event; errors never quote it (it holds key values). */
export function decodeWatchEvent(data: string): { event: WatchEvent; set: KeySet } {
  let ev: WatchEvent;
  try {
    ev = JSON.parse(data) as WatchEvent;
  } catch {
    throw watchError("malformed keys event");
  }
  if (ev === null || typeof ev !== "object" || typeof ev.current !== "object" || ev.current === null) {
    throw watchError("malformed keys event");
  }
  const key = (k: WatchKey | undefined) =>
    k ? { value: k.value, id: k.id, expiresAt: k.expires_at } : undefined;
  try {
    const set = toKeySet({
      current: key(ev.current)!,
      previous: key(ev.previous),
      next: key(ev.next),
      version: typeof ev.version === "string" ? ev.version : "",
    });
    return { event: ev, set };
  } catch (err) {
    throw watchError(`refused key set seq ${Number(ev.seq) || 0}: ${(err as Error).message}`, err);
  }
}

/**
 * A client of rotor's watch endpoint (`GET /v1/watch/{name}` on
 * `rotor serve` or `rotor daemon`), which pushes a secret's key set as
 * server-sent events the moment rotor promotes a new key. It speaks the
 * wire format of the Go `keyring.Watcher`: an app token as bearer,
 * `Last-Event-ID` on reconnection, sets numbered by `seq` and never
 * delivered out of order, heartbeat comments, reconnection with jittered
 * exponential backoff. While the server is unreachable the keyring keeps
 * its last good set and reports "degraded" health.
 *
 * @example
 * ```ts
 * const watcher = new Watcher("https://rotor.internal:8700/v1/watch/clerk-secret-key", process.env.ROTOR_APP_TOKEN!);
 * const keyring = new Keyring(await watcher.load());
 * const { stop } = watcher.start(keyring);
 * ```
 */
export class Watcher {
  readonly #url: string;
  readonly #token: string;
  readonly #fetch: typeof fetch;
  readonly #min: number;
  readonly #max: number;
  readonly #idle: number;
  readonly #onError: ((err: KeyringError) => void) | undefined;
  #lastSeq = 0;

  /**
   * @param url - the watch URL, ending in /v1/watch/<secret>; https, or http to a loopback host
   * @param token - an API token (or OIDC token) of role app for the secret
   * @param options - backoff, idle timeout, error callback
   * @throws {@link KeyringError} (code `watch`) for an invalid URL, token or option
   */
  constructor(url: string, token: string, options: WatchOptions = {}) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw watchError("the URL is not absolute");
    }
    if (!(u.protocol === "https:" || (u.protocol === "http:" && (options.allowHttp || loopback(u.hostname))))) {
      throw watchError(`${u.origin}: want https (http only to loopback; see allowHttp)`);
    }
    if (!token) throw watchError("empty token");
    this.#min = options.minBackoffMs ?? WATCH_DEFAULTS.minBackoffMs;
    this.#max = options.maxBackoffMs ?? WATCH_DEFAULTS.maxBackoffMs;
    this.#idle = options.idleTimeoutMs ?? WATCH_DEFAULTS.idleTimeoutMs;
    if (!(this.#min > 0 && this.#max >= this.#min)) throw watchError("backoff: want 0 < min <= max");
    if (!(this.#idle > 0)) throw watchError("idle timeout is not positive");
    this.#url = u.href;
    this.#token = token;
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#onError = options.onError;
  }

  /**
   * Connects, reads the current key set and disconnects: for starting a
   * keyring. Keep it fresh with {@link Watcher.run} rather than by calling
   * load again, since the server audits every connection.
   *
   * @throws {@link KeyringError} (code `watch`) when the server refuses, cannot be reached or sends no valid set
   */
  async load(signal?: AbortSignal): Promise<KeySet> {
    let got: KeySet | undefined;
    let failure: KeyringError | undefined;
    await this.#stream((data) => {
      try {
        const { event, set } = decodeWatchEvent(data);
        if (this.#fresh(event)) {
          got = set;
          this.#lastSeq = Math.max(this.#lastSeq, Number(event.seq) || 0);
        } else {
          failure = watchError("the server sent a key set older than the one in use");
        }
      } catch (err) {
        failure = err as KeyringError;
      }
      return false; // one event is enough
    }, signal);
    if (got) return got;
    throw failure ?? watchError("the stream ended before sending a key set");
  }

  /**
   * Streams key sets into `keyring` until `signal` is aborted, then
   * resolves. Each newer set goes to {@link Keyring.update}; a set older
   * than one already delivered is skipped. When the stream fails (refused,
   * unreachable, silent past the idle timeout) the error goes to `onError`
   * and to the keyring's health, the keyring keeps its last good set, and
   * the watcher reconnects after a backoff. Never rejects.
   */
  async run(keyring: Keyring, signal?: AbortSignal): Promise<void> {
    const report = (err: KeyringError) => this.#onError?.(err);
    let delay = this.#min;
    while (!signal?.aborted) {
      let delivered = false;
      let failure: KeyringError;
      try {
        await this.#stream((data) => {
          let decoded: { event: WatchEvent; set: KeySet };
          try {
            decoded = decodeWatchEvent(data);
          } catch (err) {
            report(err as KeyringError);
            return true; // a bad event is not a bad stream
          }
          delivered = true;
          if (!this.#fresh(decoded.event)) {
            keyring.reportOk(); // connected; we already have newer keys
            return true;
          }
          try {
            keyring.update(decoded.set);
            this.#lastSeq = Math.max(this.#lastSeq, Number(decoded.event.seq) || 0);
          } catch (err) {
            report(watchError((err as Error).message, err));
          }
          return true;
        }, signal);
        failure = watchError("stream closed by the server");
      } catch (err) {
        failure = err instanceof KeyringError ? err : watchError(String(err), err);
      }
      if (signal?.aborted) break;
      keyring.reportError(failure);
      report(failure);
      if (delivered) delay = this.#min;
      // Full jitter over the upper half, so that the consumers of a
      // restarted server do not all reconnect at the same instant.
      const wait = delay / 2 + Math.random() * (delay / 2);
      try {
        await sleep(wait, undefined, { signal });
      } catch {
        break; // aborted
      }
      delay = Math.min(2 * delay, this.#max);
    }
  }

  /**
   * Runs {@link Watcher.run} in the background and returns a function
   * that stops it and resolves once it has stopped.
   */
  start(keyring: Keyring): { stop: () => Promise<void> } {
    const ac = new AbortController();
    const done = this.run(keyring, ac.signal);
    return {
      stop: async () => {
        ac.abort();
        await done;
      },
    };
  }

  #fresh(ev: WatchEvent): boolean {
    const seq = Number(ev.seq) || 0;
    return seq === 0 || seq >= this.#lastSeq;
  }

  /**
   * Connects once and calls onData with the data of every "keys" event
   * until it returns false, the stream ends or fails, or signal is aborted
   * (then it resolves).
   */
  async #stream(onData: (data: string) => boolean, signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted) return;
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let idleFired = false;
    // Armed before the request, so a server that never answers is caught too.
    let timer = setTimeout(() => {
      idleFired = true;
      ac.abort();
    }, this.#idle);
    const resetIdle = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idleFired = true;
        ac.abort();
      }, this.#idle);
    };
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.#token}`,
      Accept: "text/event-stream",
      "Cache-Control": "no-cache",
    };
    if (this.#lastSeq > 0) headers["Last-Event-ID"] = String(this.#lastSeq);
    try {
      let res: Response;
      try {
        res = await this.#fetch(this.#url, { headers, signal: ac.signal });
      } catch (err) {
        if (signal?.aborted) return;
        if (idleFired) throw watchError(`no answer within ${this.#idle}ms`);
        throw watchError(describeFetchError(err), err);
      }
      if (res.status !== 200) throw await statusError(res);
      const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
      if (type !== "text/event-stream") {
        await res.body?.cancel();
        throw watchError(`server answered ${JSON.stringify(type)}, not an event stream`);
      }
      let more = true;
      let tooLong = false;
      let pending = 0;
      const parser = createParser({
        onEvent: (ev) => {
          pending = 0;
          if (!more || ev.event !== "keys" || !ev.data) return;
          more = onData(ev.data);
        },
        onComment: () => {
          pending = 0; // a heartbeat ends whatever came before it
        },
      });
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          resetIdle();
          pending += chunk.byteLength;
          if (pending > MAX_EVENT_SIZE) {
            tooLong = true;
            break;
          }
          parser.feed(decoder.decode(chunk, { stream: true }));
          if (!more) break;
        }
      } catch (err) {
        if (signal?.aborted || !more) return;
        if (idleFired) throw watchError(`stream silent for ${this.#idle}ms`);
        throw watchError(describeFetchError(err), err);
      }
      if (tooLong) throw watchError(`event longer than ${MAX_EVENT_SIZE} bytes`);
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      ac.abort(); // closes the connection if it is still open
    }
  }
}

function describeFetchError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message ?? "fetch failed"}: ${cause}` : (e?.message ?? String(err));
}

/** Describes a refused connection with the server's error code and message (which never carry values). */
async function statusError(res: Response): Promise<KeyringError> {
  let text = "";
  try {
    text = (await res.text()).slice(0, 4096);
  } catch {
    // the status is enough
  }
  const status = `${res.status} ${res.statusText}`.trim();
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error?.code) return watchError(`${status}: ${body.error.code}: ${body.error.message ?? ""}`);
  } catch {
    // not JSON
  }
  return watchError(status);
}
