// The live key set: what a Key shows of itself, the rules a key set must
// follow (those of the Go keyring's normalize), atomic swaps, expiry,
// and the health report rotor's verify step reads.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";

import { Key, Keyring, KeyringError, keyId, toKeySet } from "@rotor-dev/keyring";

import { assertNoKeys, captureOutput, clerkKey } from "./helpers.js";

describe("Key", () => {
  it("shows its id, never its value, however it is printed", async () => {
    const value = clerkKey();
    const k = new Key(value, "6ea95d6bde2ace20");
    const { text } = await captureOutput(() => {
      console.log(k);
      console.log(`${k}`, String(k), JSON.stringify(k), inspect(k, { showHidden: true, depth: 5 }));
      console.log({ set: toKeySet({ current: k }) });
      console.log(JSON.stringify({ ...k }), Object.keys(k).join(","));
    });
    assert.match(text, /6ea95d6bde2ace20/);
    assertNoKeys(text);
    assert.equal(k.value, value);
  });
});

describe("keyId", () => {
  it("computes rotor's ids: HMAC-SHA256 under the salt, else SHA-256, 16 hex characters", () => {
    // Vectors from the Go side: keyid.Of([]byte("deployment-salt"), "sk_test_value")
    // and `printf %s sk_test_value | sha256sum | cut -c1-16` (keyring's unsalted id).
    assert.equal(keyId("sk_test_value", "deployment-salt"), "46f3aaa9baa93812");
    assert.equal(keyId("sk_test_value"), "43450da4e75e306f");
  });
});

describe("toKeySet", () => {
  const cases = [
    { name: "no current key", init: { current: { value: "" } }, code: "no_current_key" },
    { name: "empty previous", init: { current: { value: "a" }, previous: { value: "", id: "p" } }, code: "invalid_key_set" },
    { name: "id with a comma", init: { current: { value: "a", id: "x,y" } }, code: "invalid_key_set" },
    { name: "id with a space", init: { current: { value: "a", id: "x y" } }, code: "invalid_key_set" },
    { name: "shared id, different values", init: { current: { value: "a", id: "k1" }, previous: { value: "b", id: "k1" } }, code: "invalid_key_set" },
    { name: "bad expiry", init: { current: { value: "a" }, previous: { value: "b", expiresAt: "soon" } }, code: "invalid_key_set" },
  ];
  for (const c of cases) {
    it(`refuses a set with ${c.name}`, () => {
      assert.throws(() => toKeySet(c.init), (err) => err instanceof KeyringError && err.code === c.code);
    });
  }

  it("fills in missing ids and treats Go's zero time as no expiry", () => {
    const set = toKeySet({ current: { value: "sk_test_value" }, previous: { value: "b", expiresAt: "0001-01-01T00:00:00Z" } });
    assert.equal(set.current.id, "43450da4e75e306f");
    assert.equal(set.previous.expiresAt, undefined);
    assert.ok(Object.isFrozen(set));
  });

  it("never quotes a value in its errors", () => {
    const a = clerkKey();
    const b = clerkKey();
    try {
      toKeySet({ current: { value: a, id: "same" }, previous: { value: b, id: "same" } });
      assert.fail("accepted two keys sharing an id");
    } catch (err) {
      assertNoKeys(`${err.message} ${inspect(err)}`);
    }
  });
});

describe("Keyring", () => {
  it("swaps sets atomically, tells listeners, and keeps the last good set when an update is invalid", () => {
    const [a, b, c] = [clerkKey(), clerkKey(), clerkKey()];
    const kr = new Keyring({ current: { value: a, id: "ka" } });
    const seen = [];
    kr.onChange((from, to) => seen.push(`${from.current}->${to.current}`));
    assert.equal(kr.update({ current: { value: b, id: "kb" }, previous: { value: a, id: "ka" } }), true);
    assert.equal(kr.update({ current: { value: b, id: "kb" }, previous: { value: a, id: "ka" } }), false, "same set again is no change");
    assert.throws(() => kr.update({ current: { value: "" } }), { code: "no_current_key" });
    assert.equal(kr.current.value, b, "an invalid set does not replace the good one");
    assert.equal(kr.health().status, "degraded");
    kr.update({ current: { value: c, id: "kc" }, previous: { value: b, id: "kb" } });
    assert.deepEqual(seen, ["ka->kb", "kb->kc"]);
    assert.equal(kr.health().status, "ok");
  });

  it("stops falling back to, and reporting, a previous key once it expired", () => {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const kr = new Keyring(
      { current: { value: clerkKey(), id: "cur" }, previous: { value: clerkKey(), id: "prev", expiresAt: "2026-01-02T00:00:00Z" } },
      { now: () => now },
    );
    assert.equal(kr.fallback?.id, "prev");
    assert.equal(kr.health().key_ids.previous, "prev");
    now = Date.parse("2026-01-02T00:00:00Z");
    assert.equal(kr.fallback, undefined);
    assert.equal(kr.health().key_ids.previous, "");
  });

  it("reports health in the Go keyring's JSON shape, ids only", () => {
    const cur = clerkKey();
    const kr = new Keyring({ current: { value: cur, id: "6ea95d6bde2ace20" }, next: { value: clerkKey(), id: "n1" }, version: "7" });
    kr.reportError(new KeyringError("watch", "watch: fetch failed: ECONNREFUSED"));
    const h = JSON.parse(JSON.stringify(kr.health()));
    // Field names and types of keyring.Health (keyring/health.go), which
    // trigger.Consumers reads (key_ids.current).
    assert.deepEqual(Object.keys(h).sort(), ["key_ids", "last_error", "last_refresh", "refresh_interval_seconds", "status", "version"]);
    assert.deepEqual(h.key_ids, { current: "6ea95d6bde2ace20", previous: "", next: "n1" });
    assert.equal(h.status, "degraded");
    assert.equal(h.version, "7");
    assert.ok(!Number.isNaN(Date.parse(h.last_refresh)));
    assert.equal(h.refresh_interval_seconds, 0, "a keyring that is pushed its sets polls nothing");
    assertNoKeys(JSON.stringify(h));
  });

  it("reports the refresh interval it is given, which rotor's verify step waits for", () => {
    const set = { current: { value: clerkKey(), id: "k1" } };
    assert.equal(new Keyring(set, { refreshIntervalMs: 30_000 }).health().refresh_interval_seconds, 30);
    assert.equal(new Keyring(set, { refreshIntervalMs: 100 }).health().refresh_interval_seconds, 0.1);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      assert.throws(() => new Keyring(set, { refreshIntervalMs: bad }), (err) => err.code === "invalid_option");
    }
  });
});
