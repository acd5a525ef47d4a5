/**
 * `@rotor-dev/keyring/clerk`: Clerk's `@clerk/backend` on a {@link Keyring}
 * of Clerk secret keys, falling back from the current key to the previous
 * one when Clerk rejects the current key.
 *
 * - {@link createClerkClient} is a drop-in for `@clerk/backend`'s: every
 *   Backend API call (`client.users.getUserList()`, …) is made with the
 *   keyring's current key and, when Clerk answers 401 `clerk_key_invalid`,
 *   made once more with the previous key (while it is within its grace
 *   period). Clerk refuses a rejected key before doing anything, so the
 *   retry is safe for every method, writes included.
 * - The instance JWKS that verifies session tokens is fetched the same way
 *   ({@link InstanceJwks}), and handed to Clerk's verification as a
 *   `jwtKey`, so {@link ClerkFallbackClient.authenticateRequest} and
 *   {@link verifySessionToken} verify tokens locally whichever key Clerk
 *   still accepts. This also spares the ~5 s of retries Clerk's own JWKS
 *   fetch makes with a rejected key.
 * - Every fallback is reported to `onFallback` with the key ids involved,
 *   for logs and metrics.
 *
 * Requires the peer dependency `@clerk/backend`; runs on Node (it uses
 * `node:crypto` to turn a JWK into the PEM Clerk's `jwtKey` takes).
 *
 * @example
 * ```ts
 * import { createClerkClient } from "@rotor-dev/keyring/clerk";
 *
 * const clerk = createClerkClient(keyring, {
 *   publishableKey: process.env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY,
 *   onFallback: (e) => fallbacks.inc({ operation: e.operation }), // e.from / e.to are key ids
 * });
 * const { totalCount } = await clerk.users.getUserList({ limit: 1 });
 * ```
 *
 * @packageDocumentation
 */
import { createPublicKey, type JsonWebKey as NodeJsonWebKey } from "node:crypto";

import {
  createClerkClient as createClerkBackendClient,
  verifyToken as clerkVerifyToken,
  type ClerkClient,
  type ClerkOptions,
} from "@clerk/backend";
import { isClerkAPIResponseError } from "@clerk/backend/errors";

import { fallbackKey, type Key, type KeySet, type Keyring } from "./keyring.js";

/** A fallback from the current key to the previous one. Key ids only. */
export interface FallbackEvent {
  /** The call that fell back: `users.getUserList`, `jwks.getJwks`, … */
  operation: string;
  /** The id of the key Clerk rejected (the current key). */
  from: string;
  /** The id of the key the call was made with again (the previous key). */
  to: string;
}

/** Options of {@link createClerkClient}: `@clerk/backend`'s, without the secret key (the keyring has it). */
export interface ClerkFallbackOptions extends Omit<ClerkOptions, "secretKey"> {
  /** Called after every fallback to the previous key, before the retry. */
  onFallback?: (event: FallbackEvent) => void;
  /** How long the instance JWKS is cached, ms (default 1 h, as Clerk's SDK). */
  jwksCacheTtlMs?: number;
}

/**
 * A `@clerk/backend` client whose calls fall back to the previous key,
 * plus the instance JWKS it verifies session tokens with.
 */
export type ClerkFallbackClient = ClerkClient & {
  /** The instance's session-token verification keys, fetched with fallback. */
  readonly instanceJwks: InstanceJwks;
};

/**
 * Reports whether err is Clerk rejecting the secret key: a Backend API
 * error with status 401 and code `clerk_key_invalid` (a revoked, deleted or
 * unknown key). Only then is another key worth a try.
 */
export function isKeyRejected(err: unknown): boolean {
  if (!isClerkAPIResponseError(err)) return false;
  return err.status === 401 && (err.errors ?? []).some((e) => e.code === "clerk_key_invalid");
}

/**
 * Creates a `@clerk/backend` client for the keys in `keyring` (a drop-in
 * for `createClerkClient` from `@clerk/backend`, which it uses). Each call
 * takes a snapshot of the key set, so both attempts see the same keys even
 * if the set changes meanwhile; the per-key Clerk clients are made once
 * per key and dropped when the key leaves the set.
 *
 * @param keyring - a keyring of Clerk instance secret keys
 * @param options - `@clerk/backend` options (apiUrl, publishableKey, …) and the fallback callback
 */
export function createClerkClient(keyring: Keyring, options: ClerkFallbackOptions = {}): ClerkFallbackClient {
  const { onFallback, jwksCacheTtlMs, ...clerkOptions } = options;
  const clients = new Map<string, ClerkClient>();
  const clientFor = (key: Key, set: KeySet): ClerkClient => {
    let c = clients.get(key.value);
    if (!c) {
      if (clients.size >= 3) {
        const live = new Set([set.current.value, set.previous?.value, set.next?.value]);
        for (const v of clients.keys()) if (!live.has(v)) clients.delete(v);
      }
      c = createClerkBackendClient({ ...clerkOptions, secretKey: key.value });
      clients.set(key.value, c);
    }
    return c;
  };

  // call runs op with the current key and, if Clerk rejects it, once more
  // with the previous one.
  const call = async <T>(operation: string, op: (c: ClerkClient) => Promise<T>): Promise<T> => {
    const set = keyring.set;
    try {
      return await op(clientFor(set.current, set));
    } catch (err) {
      if (!isKeyRejected(err)) throw err;
      jwks.markRejected(set.current.id);
      const prev = fallbackKey(set, keyring.now());
      if (!prev) throw err;
      onFallback?.({ operation, from: set.current.id, to: prev.id });
      return await op(clientFor(prev, set));
    }
  };

  const jwks: InstanceJwks = new InstanceJwks(() => call("jwks.getJwks", (c) => c.jwks.getJwks()), jwksCacheTtlMs);

  const namespaces = new Map<string, object>();
  const namespace = (ns: string): object => {
    let p = namespaces.get(ns);
    if (!p) {
      p = new Proxy(Object.create(null) as object, {
        get(_, method) {
          const sample = keyring.set;
          const api = (clientFor(sample.current, sample) as unknown as Record<string, Record<PropertyKey, unknown>>)[ns]!;
          const v = api[method];
          if (typeof v !== "function") return v;
          return (...args: unknown[]) =>
            call(`${ns}.${String(method)}`, (c) => {
              const target = (c as unknown as Record<string, Record<PropertyKey, (...a: unknown[]) => Promise<unknown>>>)[ns]!;
              return target[method]!.apply(target, args);
            });
        },
      });
      namespaces.set(ns, p);
    }
    return p;
  };

  const authenticateRequest: ClerkClient["authenticateRequest"] = (async (request: Request, opts: Record<string, unknown> = {}) => {
    const jwtKey = (opts.jwtKey as string | undefined) ?? (await jwks.pem());
    const set = keyring.set;
    const key = jwks.workingKey(set, keyring.now());
    return clientFor(key, set).authenticateRequest(request, { ...opts, jwtKey } as never);
  }) as ClerkClient["authenticateRequest"];

  return new Proxy(Object.create(null) as ClerkFallbackClient, {
    get(_, prop) {
      if (prop === "authenticateRequest") return authenticateRequest;
      if (prop === "instanceJwks") return jwks;
      if (typeof prop !== "string") return undefined;
      const set = keyring.set;
      const v = (clientFor(set.current, set) as unknown as Record<string, unknown>)[prop];
      if (prop === "telemetry" || v === null || (typeof v !== "object" && typeof v !== "function")) return v;
      if (typeof v === "function") {
        return (...args: unknown[]) =>
          call(prop, (c) => (c as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[prop]!(...args));
      }
      return namespace(prop);
    },
    has(_, prop) {
      const set = keyring.set;
      return prop === "instanceJwks" || prop in clientFor(set.current, set);
    },
  });
}

/** One key of a JSON Web Key Set. */
interface Jwk {
  kid?: string;
  kty?: string;
  alg?: string;
  use?: string;
  n?: string;
  e?: string;
}

/**
 * The instance's JSON Web Key Set, fetched from the Backend API
 * (`GET /v1/jwks`) with the keyring's current key and, when Clerk rejects
 * it, the previous one; cached for an hour like Clerk's own cache. It also
 * remembers which secret key Clerk last accepted, so session verification
 * can pass that one to Clerk.
 */
export class InstanceJwks {
  readonly #fetch: () => Promise<{ keys?: Jwk[] }>;
  readonly #ttl: number;
  #keys: Jwk[] = [];
  #pems = new Map<Jwk, string>();
  #fetchedAt = 0;
  #inflight: Promise<Jwk[]> | undefined;
  #rejected = new Set<string>(); // key ids Clerk rejected while fetching

  /**
   * @param fetchJwks - fetches the JWKS (with fallback)
   * @param ttlMs - how long a fetched set is used (default 1 h)
   */
  constructor(fetchJwks: () => Promise<unknown>, ttlMs = 60 * 60 * 1000) {
    this.#fetch = fetchJwks as () => Promise<{ keys?: Jwk[] }>;
    this.#ttl = ttlMs;
  }

  /** The signing keys, fetched when the cache is empty or stale (or when `refresh` is set). */
  async keys(refresh = false): Promise<Jwk[]> {
    if (!refresh && this.#keys.length > 0 && Date.now() - this.#fetchedAt < this.#ttl) return this.#keys;
    this.#inflight ??= (async () => {
      try {
        const body = await this.#fetch();
        const keys = (body?.keys ?? []).filter((k) => k.kty === "RSA" && (k.use ?? "sig") === "sig");
        if (keys.length === 0) throw new Error("the instance JWKS holds no RSA signing key");
        this.#keys = keys;
        this.#pems.clear();
        this.#fetchedAt = Date.now();
        return keys;
      } finally {
        this.#inflight = undefined;
      }
    })();
    return this.#inflight;
  }

  /**
   * The PEM (SPKI) public key Clerk's `jwtKey` option takes, for the key
   * named `kid` (default: the first signing key). An unknown kid makes one
   * fresh fetch, for a key Clerk rolled.
   */
  async pem(kid?: string): Promise<string> {
    let keys = await this.keys();
    let k = kid ? keys.find((x) => x.kid === kid) : keys[0];
    if (!k && kid) {
      keys = await this.keys(true);
      k = keys.find((x) => x.kid === kid);
    }
    if (!k) throw new Error(`no key ${JSON.stringify(kid)} in the instance JWKS`);
    let pem = this.#pems.get(k);
    if (pem === undefined) {
      pem = createPublicKey({ key: k as NodeJsonWebKey, format: "jwk" }).export({ type: "spki", format: "pem" }).toString();
      this.#pems.set(k, pem);
    }
    return pem;
  }

  /** Notes that Clerk rejected the key with this id (kept for the last few ids). */
  markRejected(id: string): void {
    this.#rejected.add(id);
    if (this.#rejected.size > 8) this.#rejected.delete(this.#rejected.values().next().value!);
  }

  /**
   * The key to hand Clerk for a request: the current key, unless Clerk
   * rejected it and the previous key is still valid.
   */
  workingKey(set: KeySet, now: number): Key {
    if (this.#rejected.has(set.current.id)) {
      const prev = fallbackKey(set, now);
      if (prev && !this.#rejected.has(prev.id)) return prev;
    }
    return set.current;
  }
}

/**
 * Verifies a Clerk session token against the instance JWKS fetched with
 * fallback (see {@link InstanceJwks}), with `@clerk/backend`'s
 * `verifyToken` (signature, expiry, not-before, authorized parties…).
 * Resolves the token's claims; rejects as `verifyToken` does.
 *
 * @param client - a client from {@link createClerkClient}
 * @param token - the session token (the `__session` cookie or a Bearer token)
 * @param options - `verifyToken` options (authorizedParties, clockSkewInMs, …); `jwtKey` is set here
 */
export async function verifySessionToken(
  client: ClerkFallbackClient,
  token: string,
  options: Omit<Parameters<typeof clerkVerifyToken>[1], "jwtKey" | "secretKey"> = {},
): Promise<Awaited<ReturnType<typeof clerkVerifyToken>>> {
  const kid = tokenKid(token);
  const jwtKey = await client.instanceJwks.pem(kid);
  return clerkVerifyToken(token, { ...options, jwtKey });
}

/** The kid of a JWT's header, or undefined. Never throws. */
function tokenKid(token: string): string | undefined {
  try {
    const header = JSON.parse(Buffer.from(token.split(".")[0] ?? "", "base64url").toString("utf8")) as { kid?: unknown };
    return typeof header.kid === "string" ? header.kid : undefined;
  } catch {
    return undefined;
  }
}
