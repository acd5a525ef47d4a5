/**
 * `@rotor-dev/keyring/express`: the keyring in an Express app.
 *
 * - {@link clerkMiddleware} wraps `@clerk/express`'s `clerkMiddleware` so
 *   requests are authenticated with the key Clerk currently accepts and
 *   the instance JWKS fetched with fallback, and `getAuth`/`clerkClient`
 *   work as usual.
 * - {@link healthHandler} serves the health report rotor's verify step
 *   reads.
 *
 * Requires the peer dependencies `@clerk/express` and `@clerk/backend`.
 *
 * @example
 * ```ts
 * import express from "express";
 * import { clerkMiddleware, healthHandler } from "@rotor-dev/keyring/express";
 *
 * const app = express();
 * app.all("/healthz", healthHandler(keyring)); // GET and HEAD; 405 otherwise
 * app.use(clerkMiddleware(keyring, { publishableKey: process.env.CLERK_PUBLISHABLE_KEY }));
 * ```
 *
 * @packageDocumentation
 */
import { clerkMiddleware as clerkExpressMiddleware, type ClerkMiddlewareOptions } from "@clerk/express";
import type { Request, RequestHandler } from "express";

import { createClerkClient, type ClerkFallbackClient, type ClerkFallbackOptions } from "./clerk.js";
import { resolveKeyring, type KeyringRef } from "./health.js";

export { healthHandler } from "./health.js";

/** Middleware options: `@clerk/express`'s, less what the keyring supplies. */
export type KeyringExpressOptions = Omit<ClerkMiddlewareOptions, "secretKey" | "jwtKey" | "clerkClient"> & {
  /** Called after every fallback to the previous key (key ids only). */
  onFallback?: ClerkFallbackOptions["onFallback"];
  /** A client from `createClerkClient` to share (default: one made for the keyring). */
  client?: ClerkFallbackClient;
};

/**
 * `@clerk/express`'s `clerkMiddleware` on a keyring: each request is
 * authenticated with the key Clerk currently accepts and the instance
 * JWKS fetched with fallback (see `@rotor-dev/keyring/clerk`); the Clerk
 * client it uses falls back from the current to the previous key.
 *
 * @param keyring - the keyring of Clerk secret keys (or a function returning it)
 * @param options - `@clerk/express` options (publishableKey, apiUrl, …; apiUrl defaults to `CLERK_API_URL`)
 */
export function clerkMiddleware(keyring: KeyringRef, options: KeyringExpressOptions = {}): RequestHandler {
  const { onFallback, client: given, ...clerkOptions } = options;
  let client = given;
  const getClient = (): ClerkFallbackClient =>
    (client ??= createClerkClient(resolveKeyring(keyring), {
      apiUrl: clerkOptions.apiUrl ?? process.env.CLERK_API_URL,
      publishableKey: clerkOptions.publishableKey,
      onFallback,
    }));
  return clerkExpressMiddleware(async (_req: Request) => {
    const c = getClient();
    const kr = resolveKeyring(keyring);
    const jwtKey = await c.instanceJwks.pem();
    return { ...clerkOptions, clerkClient: c, secretKey: c.instanceJwks.workingKey(kr.set, kr.now()).value, jwtKey };
  }) as RequestHandler;
}
