// @rotor-dev/keyring/clerk against the Clerk Backend API emulator
// (cmd/clerk-emulator over internal/clerkfake), with the official
// @clerk/backend underneath: no mocks. Clerk answers a deleted or unknown
// secret key with 401 and the error code clerk_key_invalid (Backend API
// reference, "Errors"); that, and only that, makes the client try the
// previous key.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Keyring } from "@rotor-dev/keyring";
import { createClerkClient, isKeyRejected, verifySessionToken } from "@rotor-dev/keyring/clerk";

import { assertNoKeys, captureOutput, clerkKey, startEmulator } from "./helpers.js";

describe("createClerkClient", () => {
  let clerk;
  before(async () => {
    clerk = await startEmulator([clerkKey()]);
  });
  after(() => clerk.stop());

  const keyringOf = (current, previous) =>
    new Keyring({ current: { value: current, id: "cur-id" }, previous: previous ? { value: previous, id: "prev-id" } : undefined });

  it("falls back from a revoked primary to the secondary with zero failed calls", async () => {
    const [primary, secondary] = [await clerk.addKey(), await clerk.addKey()];
    const kr = keyringOf(primary, secondary);
    const fallbacks = [];
    const client = createClerkClient(kr, { apiUrl: clerk.url, onFallback: (e) => fallbacks.push(e) });

    // Calls keep coming while the primary is revoked at Clerk mid-way.
    let failed = 0;
    let ok = 0;
    const { text } = await captureOutput(async () => {
      const calls = [];
      for (let i = 0; i < 60; i++) {
        if (i === 20) await clerk.revoke(primary);
        calls.push(
          client.users.getUserList({ limit: 1 }).then(
            (r) => {
              assert.equal(r.totalCount, 3);
              ok++;
            },
            (err) => {
              failed++;
              console.error(err);
            },
          ),
        );
        if (i % 10 === 9) await Promise.all(calls.splice(0));
      }
      await Promise.all(calls);
    });
    assert.equal(failed, 0, text);
    assert.equal(ok, 60);
    assert.ok(fallbacks.length >= 40, `only ${fallbacks.length} fallbacks reported`);
    assert.deepEqual(fallbacks[0], { operation: "users.getUserList", from: "cur-id", to: "prev-id" });
    assertNoKeys(text + JSON.stringify(fallbacks));
  });

  it("passes other errors through, and a rejection when there is no previous key", async () => {
    const revoked = await clerk.addKey();
    await clerk.revoke(revoked);
    const client = createClerkClient(keyringOf(revoked), { apiUrl: clerk.url });
    const err = await client.users.getUserList().then(
      () => assert.fail("a revoked key was accepted"),
      (e) => e,
    );
    assert.ok(isKeyRejected(err));
    assertNoKeys(`${err.message} ${JSON.stringify(err.errors)}`);

    const good = await clerk.addKey();
    const fallbacks = [];
    const c2 = createClerkClient(keyringOf(good, await clerk.addKey()), { apiUrl: clerk.url, onFallback: (e) => fallbacks.push(e) });
    const nf = await c2.machines.get("mch_unknown").then(
      () => assert.fail("found a machine that does not exist"),
      (e) => e,
    );
    assert.equal(nf.status, 404);
    assert.equal(isKeyRejected(nf), false);
    assert.equal(fallbacks.length, 0, "a 404 is not a reason to try another key");
  });

  it("follows the keyring: a swapped set is used from the next call on", async () => {
    const [a, b] = [await clerk.addKey(), await clerk.addKey()];
    const kr = keyringOf(a);
    const client = createClerkClient(kr, { apiUrl: clerk.url });
    assert.equal((await client.users.getUserList({ limit: 1 })).totalCount, 3);
    kr.update({ current: { value: b, id: "b" }, previous: { value: a, id: "a" } });
    await clerk.revoke(a);
    assert.equal((await client.users.getCount()), 3, "the new current key is used directly");
  });

  it("verifies session tokens against the JWKS fetched with the secondary when the primary is revoked", async () => {
    const [primary, secondary] = [await clerk.addKey(), await clerk.addKey()];
    await clerk.revoke(primary);
    const fallbacks = [];
    const client = createClerkClient(keyringOf(primary, secondary), {
      apiUrl: clerk.url,
      publishableKey: clerk.publishableKey,
      onFallback: (e) => fallbacks.push(e),
    });
    const token = await clerk.sessionToken("user_2");
    const claims = await verifySessionToken(client, token);
    assert.equal(claims.sub, "user_2");
    assert.deepEqual(fallbacks, [{ operation: "jwks.getJwks", from: "cur-id", to: "prev-id" }]);

    // authenticateRequest, as the Next.js and Express middleware use it.
    const state = await client.authenticateRequest(new Request("http://app.test/api/me", { headers: { Authorization: `Bearer ${token}` } }));
    assert.equal(state.isAuthenticated, true, `status ${state.status}, reason ${state.reason}`);
    assert.equal(state.toAuth().userId, "user_2");

    // A token the instance did not sign is refused.
    const [h, p] = token.split(".");
    await assert.rejects(verifySessionToken(client, `${h}.${p}.${Buffer.from("forged").toString("base64url")}`));
  });
});
