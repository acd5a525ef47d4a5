// The Next.js example, built (`next build`, which scripts/test.sh runs
// first), under `rotor run --mode signal` against the Clerk Backend API
// emulator: env.ts validation, the proxy (clerkMiddleware on the keyring),
// the Backend API route with fallback, the health route rotor's verify step
// reads, and rotations with revocation under load with zero failed
// requests. This is the test of @rotor-dev/keyring/nextjs, which only
// loads inside a Next.js build.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { Proc, assertNoKeys, clerkKey, repoRoot, startEmulator, waitFor } from "../../../sdk/js/test/helpers.js";
import { RotorDeployment } from "../../../sdk/js/test/rotor.js";

const appDir = resolve(fileURLToPath(new URL("..", import.meta.url)));
const nextBin = join(repoRoot, "node_modules/next/dist/bin/next");
const SECRET = "clerk-secret-key";

/** Starts the built app (next start on a free loopback port) and returns its base URL. */
async function listening(proc) {
  const m = await waitFor("next start to listen", () => /- Local:\s+(http:\/\/localhost:\d+)/.exec(proc.output), 120_000);
  return m[1];
}

describe("examples/nextjs-app", { skip: !existsSync(join(appDir, ".next/BUILD_ID")) && "run `next build` first (scripts/test.sh does)" }, () => {
  let clerk;
  let d;
  let app;
  let base;
  const procs = [];

  before(async () => {
    const first = clerkKey();
    clerk = await startEmulator([first]);
    d = await RotorDeployment.create(
      `secrets:\n  - name: ${SECRET}\n    provider: clerk\n    clerk: {api_url: "${clerk.url}", timeout: 5s}\n`,
    );
    await d.stage(SECRET, first);
    await d.rotor(["rotate", SECRET]);
    const envFile = join(d.dir, "app.env");
    app = new Proc(
      d.bin,
      ["run", "--mode", "signal", "--env-file", envFile, "--poll", "100ms", "--", process.execPath, nextBin, "start", appDir, "-p", "0", "-H", "localhost"],
      {
        cwd: d.dir,
        env: {
          ...process.env,
          CLERK_ENV_FILE: envFile,
          CLERK_API_URL: clerk.url,
          CLERK_PUBLISHABLE_KEY: clerk.publishableKey,
          NEXT_TELEMETRY_DISABLED: "1",
          CLERK_TELEMETRY_DISABLED: "1",
        },
      },
    );
    procs.push(app);
    base = await listening(app);
    d.writeConfig(
      `secrets:\n  - name: ${SECRET}\n    provider: clerk\n    clerk: {api_url: "${clerk.url}", timeout: 5s}\n` +
        `    consumers: ["${base}/api/health"]\n    consumer_timeout: 60s\n`,
    );
  });
  after(async () => {
    for (const p of procs) await p.stop();
    await clerk?.stop();
  });

  it("reports rotor's key id on the health route, in the format rotor's verify step reads", async () => {
    const h = await (await fetch(`${base}/api/health`)).json();
    assert.equal(h.key_ids.current, await d.keyId(SECRET));
    assert.equal(h.status, "ok");
  });

  it("authenticates a Clerk session token in the proxy (clerkMiddleware on the keyring)", async () => {
    const token = await clerk.sessionToken("user_1");
    const r = await fetch(`${base}/api/me`, { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, await r.clone().text());
    assert.equal((await r.json()).user_id, "user_1");
    assert.equal((await fetch(`${base}/api/me`)).status, 401);
  });

  it("rotates CLERK_SECRET_KEY three times, revoking each old key at Clerk, with zero failed requests", async (t) => {
    const token = await clerk.sessionToken("user_2");
    let requests = 0;
    const failures = [];
    let running = true;
    const worker = async (path, headers = {}) => {
      while (running) {
        const r = await fetch(`${base}${path}`, { headers }).catch((e) => ({ status: 0, text: async () => e.message }));
        requests++;
        if (r.status !== 200) failures.push(`${path}: ${r.status} ${await r.text()}`);
        else await r.arrayBuffer();
      }
    };
    const load = [worker("/api/users"), worker("/api/users"), worker("/api/me", { Authorization: `Bearer ${token}` })];
    const pid = app.child.pid;
    try {
      for (let i = 1; i <= 3; i++) {
        const oldKey = (await d.rotor(["get", SECRET, "--reveal"])).trim();
        const oldId = await d.keyId(SECRET);
        const key = await clerk.addKey();
        await d.stage(SECRET, key);
        await d.rotor(["rotate", SECRET]); // verify waits until /api/health reports the new key id
        const h = await (await fetch(`${base}/api/health`)).json();
        assert.equal(h.key_ids.current, await d.keyId(SECRET));
        assert.equal(h.key_ids.previous, oldId);
        // After the grace period (clock skew stands in for 24 h): rotor names
        // the old key, the operator deletes it at Clerk, rotor confirms.
        const skew = { ROTOR_CLOCK_SKEW: "25h" };
        const asked = await d.rotorCode(["revoke", SECRET], skew);
        assert.equal(asked.code, 6, asked.stderr);
        await clerk.revoke(oldKey);
        await d.rotor(["revoke", SECRET], skew);
        t.diagnostic(`rotation ${i}: ${oldId} -> ${h.key_ids.current}, old key revoked at Clerk; ${requests} requests so far`);
      }
    } finally {
      running = false;
      await Promise.all(load);
    }
    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} of ${requests} requests failed`);
    assert.ok(requests >= 30, `only ${requests} requests were made`);
    assert.equal(app.child.pid, pid, "rotor run signalled the app, never restarted it");
  });

  it("never printed a key: the app's and rotor's output hold key ids only", () => {
    assertNoKeys(app.output, "the app's output");
    assertNoKeys(d.transcript.replace(/^sk_\w+$/gm, ""), "rotor's output"); // `get --reveal` prints the value on purpose
  });

  it("refuses to start on a malformed key, naming the variable and never the key", async () => {
    const malformed = `${clerkKey()} x`;
    const p = new Proc(process.execPath, [nextBin, "start", appDir, "-p", "0", "-H", "localhost"], {
      env: { ...process.env, CLERK_SECRET_KEY_PRIMARY: malformed, CLERK_API_URL: clerk.url, NEXT_TELEMETRY_DISABLED: "1" },
    });
    procs.push(p);
    const url = await listening(p);
    // The keyring is made at start (instrumentation.ts); routes then fail
    // with the same validation error.
    const r = await fetch(`${url}/api/health`);
    assert.equal(r.status, 500);
    await waitFor("the validation error in the log", () => /CLERK_SECRET_KEY_PRIMARY contains white space/.test(p.output));
    await p.stop();
    assert.ok(!p.output.includes(malformed.split(" ")[0]), "the malformed key was printed");
  });
});
