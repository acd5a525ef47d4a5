// @rotor-dev/keyring/env: the variables rotor run sets, exactly as the Go
// side specifies, writes and reads them (keyring/doc.go "Environment
// variables"; keyring.EnvVars: NAME, NAME_PRIMARY, NAME_SECONDARY,
// NAME_KEY_ID, NAME_SECONDARY_KEY_ID; keyring.EnvSource), and the T3 env.ts
// schema.
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { describe, it } from "node:test";

import { createEnv } from "@t3-oss/env-core";
import { EnvError, keySetSchema, readKeySet, rotorKeyEnv } from "@rotor-dev/keyring/env";

import { assertNoKeys, captureOutput, clerkKey } from "./helpers.js";

/** The variables `rotor run` gives its child for a secret with env CLERK_SECRET_KEY. */
function rotorRunEnv(current, previous, ids = ["c0ffee0000000001", "c0ffee0000000002"]) {
  return {
    CLERK_SECRET_KEY: current,
    CLERK_SECRET_KEY_PRIMARY: current,
    CLERK_SECRET_KEY_SECONDARY: previous ?? "",
    CLERK_SECRET_KEY_KEY_ID: ids[0],
    CLERK_SECRET_KEY_SECONDARY_KEY_ID: previous ? ids[1] : "",
  };
}

describe("readKeySet", () => {
  it("reads the set rotor run injects, with rotor's key ids", () => {
    const [cur, prev] = [clerkKey(), clerkKey()];
    const set = readKeySet("CLERK_SECRET_KEY", rotorRunEnv(cur, prev), { format: "clerk-secret-key" });
    assert.equal(set.current.value, cur);
    assert.equal(set.current.id, "c0ffee0000000001");
    assert.equal(set.previous.value, prev);
    assert.equal(set.previous.id, "c0ffee0000000002");
  });

  it("falls back to plain NAME, trims, and ignores a secondary equal to the primary (as keyring.EnvSource)", () => {
    const cur = clerkKey();
    const set = readKeySet("CLERK_SECRET_KEY", { CLERK_SECRET_KEY: ` ${cur}\n`, CLERK_SECRET_KEY_SECONDARY: cur });
    assert.equal(set.current.value, cur);
    assert.equal(set.previous, undefined);
    assert.match(set.current.id, /^[0-9a-f]{16}$/);
  });

  const bad = [
    { name: "no key at all", env: {}, code: "missing_key", variable: "CLERK_SECRET_KEY_PRIMARY" },
    { name: "blank primary and plain", env: { CLERK_SECRET_KEY_PRIMARY: "  ", CLERK_SECRET_KEY: "" }, code: "missing_key", variable: "CLERK_SECRET_KEY_PRIMARY" },
    { name: "a space inside the key", env: () => ({ CLERK_SECRET_KEY_PRIMARY: clerkKey().replace("_", "_ ") }), code: "malformed_key", variable: "CLERK_SECRET_KEY_PRIMARY" },
    { name: "not a Clerk key", env: () => ({ CLERK_SECRET_KEY: `pk_test_${clerkKey().slice(8)}` }), code: "malformed_key", variable: "CLERK_SECRET_KEY" },
    { name: "live primary, test secondary", env: () => ({ CLERK_SECRET_KEY_PRIMARY: clerkKey("live"), CLERK_SECRET_KEY_SECONDARY: clerkKey("test") }), code: "malformed_key", variable: "CLERK_SECRET_KEY_SECONDARY" },
    { name: "a key id with a comma", env: () => ({ CLERK_SECRET_KEY: clerkKey(), CLERK_SECRET_KEY_KEY_ID: "a,b" }), code: "malformed_key", variable: "CLERK_SECRET_KEY_KEY_ID" },
  ];
  for (const c of bad) {
    it(`gives a clear error for ${c.name}, naming the variable and never the key`, () => {
      const env = typeof c.env === "function" ? c.env() : c.env;
      try {
        readKeySet("CLERK_SECRET_KEY", env, { format: "clerk-secret-key" });
        assert.fail("accepted");
      } catch (err) {
        assert.ok(err instanceof EnvError, String(err));
        assert.equal(err.code, c.code);
        assert.equal(err.variable, c.variable);
        assert.ok(err.message.includes(c.variable), err.message);
        assertNoKeys(`${err.message}\n${err.stack}\n${inspect(err)}`);
        for (const v of Object.values(env)) if (v.trim().length > 12) assert.ok(!err.message.includes(v.trim()));
      }
    });
  }
});

describe("rotorKeyEnv in a T3 env.ts", () => {
  const keys = rotorKeyEnv("CLERK_SECRET_KEY", { format: "clerk-secret-key" });

  it("validates the variables and yields the key set", () => {
    const [cur, prev] = [clerkKey(), clerkKey()];
    const env = createEnv({ server: { ...keys.server }, runtimeEnv: keys.runtimeEnv(rotorRunEnv(cur, prev)), emptyStringAsUndefined: true });
    const set = keys.keySet(env);
    assert.equal(set.current.value, cur);
    assert.equal(set.previous.id, "c0ffee0000000002");
  });

  it("rejects a malformed key with T3's own error reporting, which prints the variable but not the key", async () => {
    const malformed = `${clerkKey()} trailing`;
    const { text, result } = await captureOutput(() => {
      try {
        createEnv({ server: { ...keys.server }, runtimeEnv: keys.runtimeEnv({ CLERK_SECRET_KEY_PRIMARY: malformed }) });
        return undefined;
      } catch (err) {
        return err;
      }
    });
    assert.ok(result instanceof Error, "createEnv accepted a malformed key");
    assert.match(text, /CLERK_SECRET_KEY_PRIMARY contains white space/);
    assertNoKeys(`${text}\n${result.message}\n${inspect(result)}`);
  });

  it("throws a clear EnvError from keySet when no key is set at all", () => {
    const env = createEnv({ server: { ...keys.server }, runtimeEnv: keys.runtimeEnv({}) });
    assert.throws(() => keys.keySet(env), (err) => err instanceof EnvError && err.code === "missing_key");
  });
});

describe("keySetSchema", () => {
  it("parses process-style env into a key set, and reports issues by variable without values", () => {
    const cur = clerkKey();
    const schema = keySetSchema("CLERK_SECRET_KEY", { format: "clerk-secret-key" });
    assert.equal(schema.parse({ CLERK_SECRET_KEY: cur }).current.value, cur);
    const bad = schema.safeParse({ CLERK_SECRET_KEY_PRIMARY: `x${cur}` });
    assert.equal(bad.success, false);
    assert.match(JSON.stringify(bad.error.issues), /CLERK_SECRET_KEY_PRIMARY is not a Clerk secret key/);
    assertNoKeys(JSON.stringify(bad.error.issues) + inspect(bad.error, { depth: 10 }));
    const missing = schema.safeParse({});
    assert.equal(missing.success, false);
    assert.deepEqual(missing.error.issues[0].path, ["CLERK_SECRET_KEY_PRIMARY"]);
  });
});
