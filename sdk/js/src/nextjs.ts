/**
 * `@rotor-dev/keyring/nextjs`: the keyring in a Next.js (App Router) app.
 *
 * - {@link clerkMiddleware} wraps `@clerk/nextjs`'s `clerkMiddleware` so
 *   every request is authenticated with the keyring's key (the current
 *   one, or the previous one once Clerk rejected the current) and the
 *   instance JWKS fetched with fallback, instead of a `CLERK_SECRET_KEY`
 *   read once at start. Use it in `proxy.ts` (Next.js 16) or
 *   `middleware.ts` with the Node.js runtime.
 * - {@link healthRoute} is a route handler for the health report rotor's
 *   verify step reads (`app/api/health/route.ts`).
 * - {@link sharedKeyring} keeps one keyring per process across Next.js's
 *   separately bundled server code (proxy, route handlers, instrumentation).
 *
 * Requires the peer dependencies `@clerk/nextjs` and `@clerk/backend`.
 *
 * @example
 * ```ts
 * // proxy.ts
 * import { clerkMiddleware } from "@rotor-dev/keyring/nextjs";
 * import { keyring } from "@/lib/keys";
 * export default clerkMiddleware(keyring);
 *
 * // app/api/health/route.ts
 * import { healthRoute } from "@rotor-dev/keyring/nextjs";
 * export const GET = healthRoute(keyring);
 * ```
 *
 * @packageDocumentation
 */
import {
  clerkMiddleware as clerkNextMiddleware,
  type ClerkMiddlewareAuth,
  type ClerkMiddlewareOptions,
} from "@clerk/nextjs/server";
import type { NextFetchEvent, NextMiddleware, NextRequest } from "next/server.js";

import { createClerkClient, type ClerkFallbackClient, type ClerkFallbackOptions } from "./clerk.js";
import { healthResponse, resolveKeyring, type KeyringRef } from "./health.js";
import type { Keyring } from "./keyring.js";

/** The handler `@clerk/nextjs`'s `clerkMiddleware` takes. */
export type ClerkMiddlewareHandler = (
  auth: ClerkMiddlewareAuth,
  request: NextRequest,
  event: NextFetchEvent,
) => ReturnType<NextMiddleware>;

/** Middleware options: `@clerk/nextjs`'s (static or per request), less the keys the keyring supplies. */
export type KeyringMiddlewareOptions =
  | Omit<ClerkMiddlewareOptions, "secretKey" | "jwtKey">
  | ((req: NextRequest) => Omit<ClerkMiddlewareOptions, "secretKey" | "jwtKey"> | Promise<Omit<ClerkMiddlewareOptions, "secretKey" | "jwtKey">>);

/** Options of the Clerk client behind the middleware. */
export interface KeyringMiddlewareClientOptions extends ClerkFallbackOptions {
  /** A client from `createClerkClient` to share (default: one made for the keyring). */
  client?: ClerkFallbackClient;
}

/**
 * `@clerk/nextjs`'s `clerkMiddleware` on a keyring: session tokens are
 * verified against the instance JWKS fetched with the keyring's keys and
 * fallback (see `@rotor-dev/keyring/clerk`), passed as `jwtKey`, so no
 * request depends on the key the process started with. When
 * `CLERK_ENCRYPTION_KEY` is set, the key Clerk currently accepts is also
 * passed as `secretKey`, which `@clerk/nextjs` then hands on (encrypted) to
 * `auth()` and `clerkClient()` in route handlers; without it those use
 * `CLERK_SECRET_KEY` as the process started with it, so make Backend API
 * calls with the client from `@rotor-dev/keyring/clerk`. The `jwtKey` is the
 * JWKS's first signing key (a Clerk instance has one), fetched again every
 * hour. Everything else (handler, options, `auth.protect()`) is
 * `@clerk/nextjs`'s.
 *
 * @param keyring - the keyring of Clerk secret keys (or a function returning it)
 * @param handler - the middleware handler, as for `clerkMiddleware`
 * @param options - `clerkMiddleware` options (publishableKey, signInUrl, …), static or per request
 * @param clientOptions - the Clerk client: apiUrl (default `CLERK_API_URL`, as `@clerk/nextjs`), onFallback
 */
export function clerkMiddleware(
  keyring: KeyringRef,
  handler?: ClerkMiddlewareHandler,
  options?: KeyringMiddlewareOptions,
  clientOptions: KeyringMiddlewareClientOptions = {},
): NextMiddleware {
  let client = clientOptions.client;
  const getClient = (): ClerkFallbackClient => {
    if (!client) {
      const { client: _ignored, ...rest } = clientOptions;
      client = createClerkClient(resolveKeyring(keyring), { apiUrl: process.env.CLERK_API_URL, ...rest });
    }
    return client;
  };
  const params = async (req: NextRequest): Promise<ClerkMiddlewareOptions> => {
    const base = typeof options === "function" ? await options(req) : (options ?? {});
    const c = getClient();
    const kr: Keyring = resolveKeyring(keyring);
    const jwtKey = await c.instanceJwks.pem();
    if (!process.env.CLERK_ENCRYPTION_KEY) return { ...base, jwtKey };
    // @clerk/nextjs hands a secretKey option on to auth() and clerkClient()
    // in route handlers, encrypted with CLERK_ENCRYPTION_KEY; without that
    // key it refuses the option.
    const key = c.instanceJwks.workingKey(kr.set, kr.now());
    return { ...base, secretKey: key.value, jwtKey };
  };
  // With a function as its only argument clerkMiddleware takes it for the
  // handler, so an options callback always comes second.
  return clerkNextMiddleware(handler ?? (() => undefined), params);
}

/**
 * A route handler (`export const GET = healthRoute(keyring)`) serving the
 * keyring's health report: the key ids in use, in the JSON format of the
 * Go keyring's HealthHandler, which rotor's verify step (`consumers:`) and
 * adoption-gated revoke read. Key ids only, never values; `Cache-Control:
 * no-store`.
 *
 * @param keyring - the keyring (or a function returning it)
 */
export function healthRoute(keyring: KeyringRef): (req: Request) => Response {
  return (req) => healthResponse(keyring, req.method);
}

const SHARED = Symbol.for("@rotor-dev/keyring/shared");

/**
 * Returns the process-wide keyring registered under `name`, creating it
 * with `create` the first time. Next.js bundles the proxy, route handlers
 * and instrumentation separately, each with its own copy of your modules;
 * this keeps one keyring (and one env-file listener or watch stream) per
 * process for all of them.
 *
 * @param name - a name for the keyring, e.g. the secret's variable name
 * @param create - makes the keyring (and starts its sources) on first use
 */
export function sharedKeyring(name: string, create: () => Keyring): Keyring {
  const g = globalThis as typeof globalThis & { [SHARED]?: Map<string, Keyring> };
  const registry = (g[SHARED] ??= new Map());
  let k = registry.get(name);
  if (!k) {
    k = create();
    registry.set(name, k);
  }
  return k;
}
