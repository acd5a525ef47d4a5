import { keySetFromVariables, type EnvKeyOptions } from "./envvars.js";
import { toKeySet, type KeySet } from "./keyring.js";

/**
 * Reads the key set of the secret whose variable name is `name` from the
 * environment `rotor run` sets (Go: keyring.EnvVars and keyring.EnvSource):
 * the current key from `NAME_PRIMARY`, else plain `NAME`; the previous key
 * from `NAME_SECONDARY` (ignored when empty or equal to the current key);
 * their ids from `NAME_KEY_ID` and `NAME_SECONDARY_KEY_ID` (rotor's ids),
 * else computed (see `keyId`). Values are trimmed.
 *
 * @param name - the variable name, e.g. `CLERK_SECRET_KEY` (rotor's `env:` setting for the secret)
 * @param env - where to read (default `process.env`)
 * @param options - the keys' expected format, the salt for key ids
 * @throws {@link EnvError} naming the variable that is missing or malformed, never its value
 *
 * @example
 * ```ts
 * const keys = readKeySet("CLERK_SECRET_KEY", process.env, { format: "clerk-secret-key" });
 * console.log(`using Clerk key ${keys.current}`); // prints the key id
 * ```
 */
export function readKeySet(
  name: string,
  env: Record<string, string | undefined> = process.env,
  options: EnvKeyOptions = {},
): KeySet {
  return toKeySet(keySetFromVariables(name, (k) => env[k], options));
}
