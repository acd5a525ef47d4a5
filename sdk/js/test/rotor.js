// A scratch rotor deployment for the suites: a file store, one secret, and
// the rotor CLI built from this repository.
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

import { goBinary, tempDir } from "./helpers.js";

const run = promisify(execFile);

export class RotorDeployment {
  /**
   * @param {string} config the rotor.yaml to write
   */
  static async create(config) {
    const d = new RotorDeployment();
    d.dir = tempDir("rotor-js-");
    d.bin = goBinary("rotor");
    d.transcript = "";
    await d.rotor(["init"]);
    d.writeConfig(config);
    return d;
  }

  writeConfig(config) {
    writeFileSync(join(this.dir, "rotor.yaml"), config);
  }

  /** Runs rotor with args; resolves stdout; rejects on a non-zero exit (stderr never holds a key). */
  async rotor(args, env = {}) {
    try {
      const { stdout, stderr } = await run(this.bin, args, {
        cwd: this.dir,
        env: { ...process.env, ROTOR_INITIATOR: "ci:node-tests", ...env },
      });
      this.transcript += stdout + stderr;
      return stdout.trim();
    } catch (err) {
      this.transcript += (err.stdout ?? "") + (err.stderr ?? "");
      throw new Error(`rotor ${args.join(" ")}: exit ${err.code}: ${String(err.stderr).trim()}`);
    }
  }

  /** Runs rotor with args; resolves { code, stdout, stderr } whatever the exit code. */
  async rotorCode(args, env = {}) {
    try {
      return { code: 0, ...(await this.#run(args, env)) };
    } catch (err) {
      this.transcript += (err.stdout ?? "") + (err.stderr ?? "");
      if (typeof err.code !== "number") throw err;
      return { code: err.code, stdout: String(err.stdout), stderr: String(err.stderr) };
    }
  }

  async #run(args, env) {
    const r = await run(this.bin, args, { cwd: this.dir, env: { ...process.env, ROTOR_INITIATOR: "ci:node-tests", ...env } });
    this.transcript += r.stdout + r.stderr;
    return r;
  }

  /** Stages a key value (through the environment, never argv). */
  stage(secret, value) {
    return this.rotor(["stage", secret, "--from-env", "ROTOR_STAGE_KEY"], { ROTOR_STAGE_KEY: value });
  }

  /** The key id rotor has in a slot. */
  keyId(secret, slot = "current") {
    return this.rotor(["get", secret, "--slot", slot]);
  }
}
