import type { IncomingMessage, ServerResponse } from "node:http";

import type { Health, Keyring } from "./keyring.js";

/** A keyring, or a function returning it (for keyrings made on first use). */
export type KeyringRef = Keyring | (() => Keyring);

/** Resolves a {@link KeyringRef}. */
export function resolveKeyring(ref: KeyringRef): Keyring {
  return typeof ref === "function" ? ref() : ref;
}

const HEADERS = { "Content-Type": "application/json", "Cache-Control": "no-store" } as const;

function body(health: Health): string {
  return JSON.stringify(health) + "\n";
}

/**
 * A plain Node `http` handler (also an Express handler) serving
 * {@link Keyring.health} as JSON to GET and HEAD, always with status 200
 * while the keyring holds a set (a failed refresh is "degraded", not an
 * outage: the last good keys still work); 405 to other methods:
 *
 * ```json
 * {"status":"ok","key_ids":{"current":"6ea95d6bde2ace20","previous":"a5c56e05f09bd9f3","next":""},
 *  "version":"7","last_refresh":"2026-11-25T23:32:13.500Z","last_error":"","refresh_interval_seconds":0}
 * ```
 *
 * It is the format of the Go keyring's HealthHandler, which rotor's verify
 * step (`consumers:`) and adoption-gated revoke read: list this endpoint
 * under the secret's `consumers:` in rotor.yaml. Key ids only; safe to
 * expose to monitoring.
 *
 * @example
 * ```ts
 * http.createServer((req, res) => req.url === "/healthz" ? health(req, res) : app(req, res));
 * const health = healthHandler(keyring);
 * ```
 */
export function healthHandler(keyring: KeyringRef): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain; charset=utf-8" });
      res.end("method not allowed\n");
      return;
    }
    const b = body(resolveKeyring(keyring).health());
    res.writeHead(200, HEADERS);
    res.end(req.method === "GET" ? b : undefined);
  };
}

/**
 * The same report as a web-standard `Response`, for fetch-style handlers
 * (Next.js route handlers, Hono, Bun); see {@link healthHandler}.
 */
export function healthResponse(keyring: KeyringRef, method = "GET"): Response {
  if (method !== "GET" && method !== "HEAD") {
    return new Response("method not allowed\n", { status: 405, headers: { Allow: "GET, HEAD" } });
  }
  const b = body(resolveKeyring(keyring).health());
  return new Response(method === "GET" ? b : null, { status: 200, headers: HEADERS });
}
