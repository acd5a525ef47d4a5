import { readFile } from "node:fs/promises";

import { keySetFromVariables, parseEnvFile, type EnvKeyOptions } from "./envvars.js";
import { KeyringError, type Keyring } from "./keyring.js";

/** Options of {@link reloadOnSignal}. */
export interface ReloadOptions extends EnvKeyOptions {
  /** The env file `rotor run --mode signal --env-file FILE` rewrites. */
  envFile: string;
  /** The secret's variable name, e.g. `CLERK_SECRET_KEY` (rotor's `env:` setting). */
  name: string;
  /** The signal rotor run sends (`--signal`): SIGHUP (default), SIGUSR1 or SIGUSR2. */
  signal?: "SIGHUP" | "SIGUSR1" | "SIGUSR2";
  /** Called with every failed reload (for logging or metrics); the keyring keeps its set either way. */
  onError?: (err: KeyringError) => void;
  /** Called after every reload that changed the key set. */
  onReload?: () => void;
}

/** What {@link reloadOnSignal} returns. */
export interface Reloader {
  /** Re-reads the env file now, as the signal would. Resolves whether the set changed; rejects on failure. */
  reload(): Promise<boolean>;
  /** Stops listening for the signal. */
  stop(): void;
}

/**
 * Keeps a keyring on the keys `rotor run --mode signal` hands the process:
 * on every signal (SIGHUP by default) it re-reads the env file rotor run
 * rewrote just before signalling, and swaps the new key set in. A file
 * that cannot be read or holds no valid key set leaves the keyring on its
 * last good keys, and is reported through `onError` and the keyring's
 * health ("degraded").
 *
 * Installing the listener also stops the signal from terminating Node
 * (SIGHUP's default action), so call it when the process starts, before
 * rotor can signal: in Next.js, from `instrumentation.ts`.
 *
 * @example
 * ```ts
 * // rotor run --mode signal --env-file .env.rotor -- node server.js
 * const keyring = new Keyring(readKeySet("CLERK_SECRET_KEY"));
 * reloadOnSignal(keyring, { envFile: ".env.rotor", name: "CLERK_SECRET_KEY" });
 * ```
 */
export function reloadOnSignal(keyring: Keyring, options: ReloadOptions): Reloader {
  const signal = options.signal ?? "SIGHUP";
  // Signals that arrive during a read are coalesced into one more read,
  // so the last signal always wins and reads never overlap.
  let running: Promise<boolean> | undefined;
  let again = false;

  const readOnce = async (): Promise<boolean> => {
    let text: string;
    try {
      text = await readFile(options.envFile, "utf8");
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new KeyringError("env_file", `read ${options.envFile}: ${code}`, { cause: err });
    }
    const vars = parseEnvFile(text, options.envFile);
    const set = keySetFromVariables(options.name, (k) => vars[k], options);
    return keyring.update(set);
  };

  const reload = (): Promise<boolean> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      let changed = false;
      try {
        do {
          again = false;
          try {
            changed = (await readOnce()) || changed;
          } catch (err) {
            const e = err instanceof KeyringError ? err : new KeyringError("env_file", String(err), { cause: err });
            keyring.reportError(e);
            if (!again) throw e;
          }
        } while (again);
      } finally {
        running = undefined;
      }
      if (changed) options.onReload?.();
      return changed;
    })();
    return running;
  };

  const onSignal = () => {
    reload().catch((err: KeyringError) => options.onError?.(err));
  };
  process.on(signal, onSignal);
  return {
    reload,
    stop: () => {
      process.off(signal, onSignal);
    },
  };
}
