// Reload from the env file on signal: the file `rotor run --mode signal`
// writes (keyring.EnvFile: a comment, then NAME="value" lines with
// Go-quoted values; keyring/doc.go "Environment variables") is re-read on
// SIGHUP, first against a real rotor run rotating a real secret, then
// in-process for the failure cases.
import assert from "node:assert/strict";
import { writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";

import { Keyring, KeyringError, parseEnvFile, readKeySet, reloadOnSignal } from "@rotor-dev/keyring";

import { Proc, assertNoKeys, captureOutput, clerkKey, readOr, tempDir, waitFor } from "./helpers.js";
import { RotorDeployment } from "./rotor.js";

const child = fileURLToPath(new URL("./fixtures/reload-child.mjs", import.meta.url));

describe("under rotor run --mode signal", () => {
  const procs = [];
  after(async () => {
    for (const p of procs) await p.stop();
  });

  it("swaps in each rotated key set on rotor run's SIGHUP, without a restart", async () => {
    const d = await RotorDeployment.create(
      "secrets:\n  - name: app-key\n    provider: random\n    env: APP_KEY\n    grace: 1h\n    every: 2h\n",
    );
    await d.rotor(["rotate", "app-key"]);
    const envFile = join(d.dir, "app.env");
    const ready = join(d.dir, "app.ready");
    const p = new Proc(d.bin, ["run", "--mode", "signal", "--env-file", envFile, "--poll", "100ms", "--", process.execPath, child], {
      cwd: d.dir,
      env: { ...process.env, ENV_FILE: envFile, READY_FILE: ready },
    });
    procs.push(p);
    const addr = await waitFor("the app to listen", () => readOr(ready));
    const health = async () => (await fetch(`http://${addr}/healthz`)).json();

    const first = await d.keyId("app-key");
    assert.equal((await health()).key_ids.current, first, "the app reports rotor's key id from NAME_KEY_ID");
    const pid = p.child.pid;
    for (let i = 0; i < 3; i++) {
      const before = await d.keyId("app-key");
      await d.rotor(["rotate", "app-key"]);
      const now = await d.keyId("app-key");
      const h = await waitFor(`the app to report key ${now}`, async () => {
        const h = await health();
        return h.key_ids.current === now ? h : undefined;
      });
      assert.equal(h.key_ids.previous, before);
      assert.equal(h.status, "ok");
    }
    assert.equal(p.child.pid, pid, "rotor run never restarted the app");
    assert.match(p.output, /reloaded: current key/);
    // rotor's values never reached the app's output: the scan below uses
    // the values from the env file rotor wrote.
    const vars = parseEnvFile(readFileSync(envFile, "utf8"), envFile);
    for (const v of [vars.APP_KEY, vars.APP_KEY_SECONDARY]) assert.ok(v && !p.output.includes(v) && !d.transcript.includes(v));
  });
});

describe("reloadOnSignal in process", () => {
  const dir = tempDir("rotor-js-reload-");
  const file = join(dir, "keys.env");
  // As keyring.EnvFile writes it: strconv.Quote'd values.
  const write = (cur, prev, extra = "") =>
    writeFileSync(
      file,
      `# written by rotor run; re-read on SIGHUP\nAPP_KEY=${JSON.stringify(cur)}\nAPP_KEY_PRIMARY=${JSON.stringify(cur)}\n` +
        `APP_KEY_SECONDARY=${JSON.stringify(prev)}\nAPP_KEY_KEY_ID="id-${cur.slice(-6)}"\nAPP_KEY_SECONDARY_KEY_ID="${prev ? "id-" + prev.slice(-6) : ""}"\n${extra}`,
      { mode: 0o600 },
    );

  it("reloads on a real SIGHUP and keeps the last good keys when the file is bad", async () => {
    const [a, b] = [clerkKey(), clerkKey()];
    write(a, "");
    const kr = new Keyring(readKeySet("APP_KEY", { APP_KEY: a }));
    const errors = [];
    const r = reloadOnSignal(kr, { envFile: file, name: "APP_KEY", onError: (e) => errors.push(e) });
    try {
      write(b, a);
      process.kill(process.pid, "SIGHUP");
      await waitFor("the new key", () => kr.current.value === b);
      assert.equal(kr.fallback.value, a);

      const { text } = await captureOutput(async () => {
        writeFileSync(file, `APP_KEY_PRIMARY=${clerkKey()}\n`); // unquoted: not what rotor run writes
        process.kill(process.pid, "SIGHUP");
        await waitFor("the error", () => errors.length === 1);
        writeFileSync(file, `APP_KEY_PRIMARY=""\nAPP_KEY=""\n`);
        await assert.rejects(r.reload(), (e) => e instanceof KeyringError && e.code === "missing_key");
        await assert.rejects(
          reloadOnSignal(kr, { envFile: join(dir, "missing.env"), name: "APP_KEY" }).reload(),
          (e) => e.code === "env_file" && /ENOENT/.test(e.message),
        );
        console.error(errors.map(String).join("\n"), JSON.stringify(kr.health()));
      });
      assert.equal(errors[0].code, "env_file");
      assert.match(errors[0].message, /keys\.env:1: want NAME="value"/);
      assert.equal(kr.current.value, b, "last good keys kept");
      assert.equal(kr.health().status, "degraded");
      assertNoKeys(text);
    } finally {
      r.stop();
    }
  });
});

describe("parseEnvFile", () => {
  it("undoes Go's strconv.Quote", () => {
    // strconv.Quote output for values with quotes, backslashes, control
    // and non-ASCII characters.
    const text = [
      "# written by rotor run; re-read on SIGHUP",
      'A="plain"',
      'B="with \\"quotes\\" and \\\\ backslash"',
      'C="tab\\tnl\\nbell\\a"',
      'D="\\x00\\u00e9\\U0001f600é"',
      'E=""',
      "",
    ].join("\n");
    assert.deepEqual({ ...parseEnvFile(text) }, { A: "plain", B: 'with "quotes" and \\ backslash', C: "tab\tnl\nbell\x07", D: "\x00é😀é", E: "" });
  });

  for (const line of ["A=plain", "A='single'", 'A="unterminated', 'A="bad \\q escape"', '="no name"', 'A="x"y"']) {
    it(`refuses ${line} without quoting it`, () => {
      assert.throws(() => parseEnvFile(`${line}\n`, "f.env"), (e) => e.code === "env_file" && e.message === 'f.env:1: want NAME="value" as rotor run writes it');
    });
  }
});
