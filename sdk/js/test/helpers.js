// Shared helpers of the node --test suites: real processes (the Clerk
// Backend API emulator, rotor), generated keys, and the output scan that
// proves no key value was printed.
import { execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";

// The tests talk to loopback only: no SDK telemetry.
process.env.CLERK_TELEMETRY_DISABLED = "1";
process.env.NEXT_TELEMETRY_DISABLED = "1";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

const ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A fresh Clerk-shaped secret key; every key a test makes is remembered for the leak scan. */
export const generated = [];
export function clerkKey(env = "test") {
  const b = randomBytes(40);
  let s = "";
  for (const x of b) s += ALPHABET[x % ALPHABET.length];
  const k = `sk_${env}_${s}`;
  generated.push(k);
  return k;
}

/** A temporary directory, removed when the test process exits. */
const tempDirs = [];
export function tempDir(prefix) {
  const d = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}
process.on("exit", () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Go binaries the suites run. scripts/test.sh builds them once and passes
 * ROTOR_TEST_BIN; run alone, a suite builds them into a temporary
 * directory (Go's build cache makes that quick after the first time),
 * with the rotortest build tag: the suites use rotor's test knobs
 * (ROTOR_CLOCK_SKEW), which a release build refuses.
 */
let binDir = process.env.ROTOR_TEST_BIN;
export function goBinary(name) {
  if (!binDir) binDir = tempDir("rotor-js-bin-");
  const out = join(binDir, name);
  if (!existsSync(out)) {
    execFileSync("go", ["build", "-tags", "rotortest", "-o", out, `./cmd/${name}`], { cwd: repoRoot, stdio: ["ignore", "ignore", "inherit"] });
  }
  return out;
}

/**
 * Waits until check() returns a truthy value, polling every 10 ms; fails
 * after a generous deadline (a busy 2-core machine is slow, not wrong).
 */
export async function waitFor(what, check, deadlineMs = 30_000) {
  const until = Date.now() + deadlineMs;
  let last;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await sleep(10);
  }
}

/** A started child process with its combined output collected. */
export class Proc {
  constructor(cmd, args, opts = {}) {
    this.output = "";
    this.child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    this.exited = new Promise((res) => this.child.on("exit", (code, signal) => res({ code, signal })));
    this.child.stdout.on("data", (d) => (this.output += d));
    this.child.stderr.on("data", (d) => (this.output += d));
  }
  /** The first line of stdout. */
  async firstLine() {
    return waitFor("the first line of output", () => {
      const i = this.output.indexOf("\n");
      return i > 0 ? this.output.slice(0, i).trim() : undefined;
    });
  }
  /** Ends the process (SIGTERM, SIGKILL after 10 s) and waits for it. */
  async stop(signal = "SIGTERM") {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }
}

/** Starts the Clerk Backend API emulator (cmd/clerk-emulator) with the given instance keys. */
export async function startEmulator(keys) {
  const p = new Proc(goBinary("clerk-emulator"), ["--listen", "127.0.0.1:0", ...keys.flatMap((k) => ["--key", k])]);
  const url = await p.firstLine();
  const instance = await (await fetch(`${url}/_admin/instance`)).json();
  return {
    url,
    proc: p,
    publishableKey: instance.publishable_key,
    /** Creates an instance key, as "Add new key" in the Dashboard. */
    async addKey() {
      const r = await fetch(`${url}/_admin/keys`, { method: "POST", body: "{}" });
      const { secret } = await r.json();
      generated.push(secret);
      return secret;
    },
    /** Deletes (revokes) an instance key, as the Dashboard does. */
    async revoke(secret) {
      const r = await fetch(`${url}/_admin/keys`, { method: "DELETE", body: JSON.stringify({ secret }) });
      if (r.status !== 204) throw new Error(`revoke: ${r.status}`);
    },
    /** A session token for user sub, signed with the instance key. */
    async sessionToken(sub = "user_1") {
      const r = await fetch(`${url}/_admin/session_tokens`, { method: "POST", body: JSON.stringify({ sub, ttl_seconds: 300 }) });
      return (await r.json()).jwt;
    },
    stop: () => p.stop(),
  };
}

/**
 * Captures everything written to stdout, stderr and the console while fn
 * runs, and returns it with fn's result.
 */
export async function captureOutput(fn) {
  let text = "";
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  const methods = ["log", "info", "warn", "error", "debug"];
  const saved = methods.map((m) => console[m]);
  process.stdout.write = (chunk, ...rest) => ((text += String(chunk)), ow(chunk, ...rest));
  process.stderr.write = (chunk, ...rest) => ((text += String(chunk)), ew(chunk, ...rest));
  const { inspect } = await import("node:util");
  for (const m of methods) console[m] = (...args) => (text += args.map((a) => (typeof a === "string" ? a : inspect(a))).join(" ") + "\n");
  try {
    const result = await fn();
    return { result, text };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    methods.forEach((m, i) => (console[m] = saved[i]));
  }
}

/** Fails if any key value a test generated appears in text. */
export function assertNoKeys(text, where = "output") {
  for (const k of generated) {
    if (text.includes(k)) throw new Error(`a generated key value appears in ${where}`);
  }
}

/** Reads a file, or "" if it does not exist. */
export function readOr(path) {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}
