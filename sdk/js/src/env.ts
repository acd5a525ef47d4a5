/**
 * `@rotor-dev/keyring/env`: the environment variables `rotor run` sets,
 * as a key set and as a schema for a T3-style `env.ts`
 * (`@t3-oss/env-nextjs` / `@t3-oss/env-core` with zod).
 *
 * For each secret rotor run sets `NAME` and `NAME_PRIMARY` (the current
 * key), `NAME_SECONDARY` (the previous key while it is within its grace
 * period, else empty), `NAME_KEY_ID` and `NAME_SECONDARY_KEY_ID` (rotor's
 * key ids). {@link readKeySet} turns them into a {@link KeySet};
 * {@link rotorKeyEnv} gives the zod schemas and the key set for `env.ts`.
 * Errors name the variable at fault and never print a key.
 *
 * @example
 * ```ts
 * // src/env.ts
 * import { createEnv } from "@t3-oss/env-nextjs";
 * import { rotorKeyEnv } from "@rotor-dev/keyring/env";
 *
 * const clerkKeys = rotorKeyEnv("CLERK_SECRET_KEY", { format: "clerk-secret-key" });
 * export const env = createEnv({
 *   server: { ...clerkKeys.server },
 *   runtimeEnv: { ...clerkKeys.runtimeEnv() },
 * });
 * export const clerkKeySet = () => clerkKeys.keySet(env); // throws EnvError if no key is set
 * ```
 *
 * Requires `zod` (a peer dependency) for the schemas.
 *
 * @packageDocumentation
 */
import { z } from "zod";

import { EnvError, checkKey, keySetFromVariables, variableNames, type EnvKeyOptions, type KeyFormat } from "./envvars.js";
import { toKeySet, validKeyId, type KeySet } from "./keyring.js";

export { readKeySet } from "./readenv.js";
export { EnvError, parseEnvFile, type EnvKeyOptions, type KeyFormat } from "./envvars.js";

/** The five variables rotor run sets for the secret whose variable name is `N`. */
export type RotorKeyVariable<N extends string> =
  | N
  | `${N}_PRIMARY`
  | `${N}_SECONDARY`
  | `${N}_KEY_ID`
  | `${N}_SECONDARY_KEY_ID`;

/** What {@link rotorKeyEnv} returns. */
export interface RotorKeyEnv<N extends string> {
  /**
   * zod schemas for the five variables, to spread into `server:` of
   * `createEnv`. Each is optional on its own (rotor run sets all five, a
   * plain deployment only `NAME`); a present key must have the expected
   * format, a present id must be a key id. The issues name the variable,
   * never the value.
   */
  server: { [K in RotorKeyVariable<N>]: z.ZodOptional<z.ZodString> };
  /**
   * The five variables read from `env` (default `process.env`), to spread
   * into `runtimeEnv:` of `createEnv`.
   */
  runtimeEnv(env?: Record<string, string | undefined>): { [K in RotorKeyVariable<N>]: string | undefined };
  /**
   * The key set of the validated variables (the object `createEnv`
   * returns, or any record with them).
   *
   * @throws {@link EnvError} when neither `NAME_PRIMARY` nor `NAME` is set, or a key is malformed
   */
  keySet(env: Partial<Record<RotorKeyVariable<N>, string | undefined>>): KeySet;
  /** The names of the five variables. */
  variables: RotorKeyVariable<N>[];
}

function keySchema(variable: string, format: KeyFormat | undefined): z.ZodOptional<z.ZodString> {
  return z
    .string()
    .superRefine((v, ctx) => {
      const value = v.trim();
      if (value === "") return;
      const problem = checkKey(value, format);
      if (problem) ctx.addIssue({ code: "custom", message: `${variable} ${problem}` });
    })
    .optional();
}

function idSchema(variable: string): z.ZodOptional<z.ZodString> {
  return z
    .string()
    .superRefine((v, ctx) => {
      const id = v.trim();
      if (id !== "" && !validKeyId(id)) {
        ctx.addIssue({ code: "custom", message: `${variable} is not a key id (want 1-128 printable characters without spaces or commas)` });
      }
    })
    .optional();
}

/**
 * The schemas and key set of one rotated secret for a T3-style `env.ts`.
 *
 * @param name - the variable name (rotor's `env:` setting), e.g. `CLERK_SECRET_KEY`
 * @param options - the keys' format (`"clerk-secret-key"` for Clerk), the salt for key ids
 */
export function rotorKeyEnv<N extends string>(name: N, options: EnvKeyOptions = {}): RotorKeyEnv<N> {
  const v = variableNames(name);
  const variables = [v.plain, v.primary, v.secondary, v.keyId, v.secondaryKeyId] as RotorKeyVariable<N>[];
  const server = {
    [v.plain]: keySchema(v.plain, options.format),
    [v.primary]: keySchema(v.primary, options.format),
    [v.secondary]: keySchema(v.secondary, options.format),
    [v.keyId]: idSchema(v.keyId),
    [v.secondaryKeyId]: idSchema(v.secondaryKeyId),
  } as RotorKeyEnv<N>["server"];
  return {
    server,
    variables,
    runtimeEnv: (env = process.env) =>
      Object.fromEntries(variables.map((k) => [k, env[k]])) as ReturnType<RotorKeyEnv<N>["runtimeEnv"]>,
    keySet: (env) => toKeySet(keySetFromVariables(name, (k) => (env as Record<string, string | undefined>)[k], options)),
  };
}

/**
 * A zod schema over the whole environment that yields the key set of
 * `name`, for apps that validate their environment with zod directly.
 * Missing and malformed keys are issues whose path is the variable and
 * whose message never contains a value.
 *
 * @example
 * ```ts
 * const keys = keySetSchema("CLERK_SECRET_KEY", { format: "clerk-secret-key" }).parse(process.env);
 * ```
 */
export function keySetSchema(name: string, options: EnvKeyOptions = {}): z.ZodType<KeySet, Record<string, string | undefined>> {
  const fields = rotorKeyEnv(name, options).server as Record<string, z.ZodOptional<z.ZodString>>;
  return z
    .object(fields)
    .superRefine((vars, ctx) => {
      try {
        keySetFromVariables(name, (k) => vars[k], options);
      } catch (err) {
        if (!(err instanceof EnvError)) throw err;
        ctx.addIssue({ code: "custom", path: [err.variable], message: err.message });
      }
    })
    .transform((vars) => toKeySet(keySetFromVariables(name, (k) => vars[k], options))) as unknown as z.ZodType<
    KeySet,
    Record<string, string | undefined>
  >;
}
