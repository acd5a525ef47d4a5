// @rotor-dev/keyring/express: @clerk/express's clerkMiddleware on a keyring,
// against the Clerk Backend API emulator, in a real Express server.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { getAuth } from "@clerk/express";
import express from "express";
import { Keyring } from "@rotor-dev/keyring";
import { clerkMiddleware, healthHandler } from "@rotor-dev/keyring/express";

import { assertNoKeys, captureOutput, clerkKey, startEmulator } from "./helpers.js";

describe("clerkMiddleware for Express", () => {
  let clerk;
  let server;
  let base;
  let keyring;
  const fallbacks = [];

  before(async () => {
    clerk = await startEmulator([clerkKey()]);
    const [primary, secondary] = [await clerk.addKey(), await clerk.addKey()];
    keyring = new Keyring({ current: { value: primary, id: "primary-id" }, previous: { value: secondary, id: "secondary-id" } });
    const app = express();
    app.all("/healthz", healthHandler(keyring)); // GET and HEAD; 405 otherwise
    app.use(clerkMiddleware(keyring, { apiUrl: clerk.url, publishableKey: clerk.publishableKey, onFallback: (e) => fallbacks.push(e) }));
    app.get("/me", (req, res) => {
      const { userId } = getAuth(req);
      if (!userId) return res.status(401).json({ error: "signed out" });
      res.json({ user_id: userId });
    });
    await new Promise((resolve) => {
      server = app.listen(0, "127.0.0.1", resolve);
    });
    base = `http://127.0.0.1:${server.address().port}`;
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
    await clerk.stop();
  });

  it("authenticates session tokens with the secondary key once the primary is revoked", async () => {
    const { text } = await captureOutput(async () => {
      const token = await clerk.sessionToken("user_3");
      const me = async () => fetch(`${base}/me`, { headers: { Authorization: `Bearer ${token}` } });
      let r = await me();
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { user_id: "user_3" });

      await clerk.revoke(keyring.current.value);
      // A new instance JWKS fetch (a fresh client) must fall back.
      const kr2 = new Keyring(keyring.set);
      const app = express();
      app.use(clerkMiddleware(kr2, { apiUrl: clerk.url, publishableKey: clerk.publishableKey, onFallback: (e) => fallbacks.push(e) }));
      app.get("/me", (req, res) => res.json({ user_id: getAuth(req).userId }));
      const s2 = await new Promise((resolve) => {
        const s = app.listen(0, "127.0.0.1", () => resolve(s));
      });
      try {
        r = await fetch(`http://127.0.0.1:${s2.address().port}/me`, { headers: { Authorization: `Bearer ${token}` } });
        assert.equal(r.status, 200);
        assert.deepEqual(await r.json(), { user_id: "user_3" });
      } finally {
        await new Promise((resolve) => s2.close(resolve));
      }
      r = await fetch(`${base}/me`);
      assert.equal(r.status, 401, "no token, no user");
    });
    assert.deepEqual(fallbacks.at(-1), { operation: "jwks.getJwks", from: "primary-id", to: "secondary-id" });
    assertNoKeys(text);
  });

  it("serves the health report rotor's verify step reads", async () => {
    const r = await fetch(`${base}/healthz`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("cache-control"), "no-store");
    const h = await r.json();
    assert.deepEqual(h.key_ids, { current: "primary-id", previous: "secondary-id", next: "" });
    const post = await fetch(`${base}/healthz`, { method: "POST" });
    assert.equal(post.status, 405);
    assertNoKeys(JSON.stringify(h));
  });
});
