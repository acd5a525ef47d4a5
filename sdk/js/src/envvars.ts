// The environment format rotor run writes, read in one place for the env
// entry point, the env-file reload and the Next.js helpers.
//
// The format's specification is the Go keyring's "Environment variables"
// (keyring/doc.go): keyring.EnvVars writes, per secret, NAME (current),
// NAME_PRIMARY (current), NAME_SECONDARY (previous while valid, else
// empty), NAME_KEY_ID and NAME_SECONDARY_KEY_ID; keyring.EnvSource reads
// NAME_PRIMARY, else NAME, trims white space, ignores a secondary equal to
// the primary, and derives an id only where the _KEY_ID variable is empty.
// keyring.EnvFile writes the same variables for signal mode as a comment
// line, then NAME="value" lines quoted with Go's strconv.Quote;
// keyring.ParseEnvFile reads them.

import { KeyringError, keyId, validKeyId, type KeySetInit } from "./keyring.js";

/**
 * The shape a key must have. `"clerk-secret-key"`: a Clerk instance secret
 * key (`sk_test_…` or `sk_live_…`), with primary and secondary of the same
 * environment. A RegExp: any key it matches. Undefined: any non-empty
 * value without white space or control characters.
 */
export type KeyFormat = "clerk-secret-key" | RegExp;

/** Options for reading a key set from variables. */
export interface EnvKeyOptions {
  /** The shape keys must have; see {@link KeyFormat}. */
  format?: KeyFormat | undefined;
  /**
   * The deployment's salt, to compute rotor's own key ids when
   * NAME_KEY_ID / NAME_SECONDARY_KEY_ID are not set (see `keyId`).
   */
  salt?: Uint8Array | string | undefined;
}

/** A missing or malformed key variable. Names the variable, never its value. */
export class EnvError extends KeyringError {
  /** The variable at fault. */
  readonly variable: string;

  /**
   * @param code - `missing_key` or `malformed_key`
   * @param variable - the variable at fault
   * @param message - what is wrong with it, without its value
   */
  constructor(code: "missing_key" | "malformed_key", variable: string, message: string) {
    super(code, message);
    this.name = "EnvError";
    this.variable = variable;
  }
}

const CLERK_KEY = /^sk_(test|live)_[A-Za-z0-9_-]+$/;

/**
 * Checks one key value; returns a description of what is wrong (without
 * the value), or undefined.
 */
export function checkKey(value: string, format: KeyFormat | undefined): string | undefined {
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f\u007f]/.test(value)) return "contains white space or control characters";
  if (format === "clerk-secret-key" && !CLERK_KEY.test(value)) {
    return "is not a Clerk secret key (want sk_test_… or sk_live_…)";
  }
  if (format instanceof RegExp && !format.test(value)) return `does not match ${format}`;
  return undefined;
}

/** The variables rotor run writes for the secret whose env name is `name`. */
export function variableNames(name: string): {
  plain: string;
  primary: string;
  secondary: string;
  keyId: string;
  secondaryKeyId: string;
} {
  return {
    plain: name,
    primary: `${name}_PRIMARY`,
    secondary: `${name}_SECONDARY`,
    keyId: `${name}_KEY_ID`,
    secondaryKeyId: `${name}_SECONDARY_KEY_ID`,
  };
}

/**
 * Reads the key set of `name` through `getenv`, as the Go
 * `keyring.EnvSource` does, and checks each key's shape.
 *
 * @throws {@link EnvError} naming the variable that is missing or malformed
 */
export function keySetFromVariables(
  name: string,
  getenv: (variable: string) => string | undefined,
  options: EnvKeyOptions = {},
): KeySetInit {
  const v = variableNames(name);
  const get = (variable: string) => (getenv(variable) ?? "").trim();
  let currentVar = v.primary;
  let current = get(v.primary);
  if (current === "") {
    currentVar = v.plain;
    current = get(v.plain);
  }
  if (current === "") {
    throw new EnvError(
      "missing_key",
      v.primary,
      `${v.primary} and ${v.plain} are empty or unset: run the app under \`rotor run\` (which sets them) or set ${v.plain}`,
    );
  }
  const problem = checkKey(current, options.format);
  if (problem) throw new EnvError("malformed_key", currentVar, `${currentVar} ${problem}`);
  const id = (value: string, idVar: string): string => {
    const given = get(idVar);
    if (given === "") return keyId(value, options.salt);
    if (!validKeyId(given)) {
      throw new EnvError("malformed_key", idVar, `${idVar} is not a key id (want 1-128 printable characters without spaces or commas)`);
    }
    return given;
  };
  const set: KeySetInit = { current: { value: current, id: id(current, v.keyId) } };
  const previous = get(v.secondary);
  if (previous !== "" && previous !== current) {
    const p = checkKey(previous, options.format);
    if (p) throw new EnvError("malformed_key", v.secondary, `${v.secondary} ${p}`);
    if (options.format === "clerk-secret-key" && previous.slice(0, 8) !== current.slice(0, 8)) {
      throw new EnvError(
        "malformed_key",
        v.secondary,
        `${v.secondary} is a ${previous.slice(3, 7)} key but ${currentVar} is a ${current.slice(3, 7)} key: both must belong to the same Clerk instance`,
      );
    }
    set.previous = { value: previous, id: id(previous, v.secondaryKeyId) };
  }
  return set;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: "\x07",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
  v: "\v",
  "\\": "\\",
  '"': '"',
  "'": "'",
};

/**
 * Undoes Go's strconv.Quote: a double-quoted string with Go escapes
 * (\n, \\, \", \xHH, \uHHHH, \UHHHHHHHH, octal \NNN). Returns undefined
 * for anything else. \x and octal escapes are bytes of UTF-8.
 */
export function unquoteGo(quoted: string): string | undefined {
  if (quoted.length < 2 || quoted[0] !== '"' || quoted[quoted.length - 1] !== '"') return undefined;
  const body = quoted.slice(1, -1);
  const bytes: number[] = [];
  const enc = new TextEncoder();
  for (let i = 0; i < body.length; ) {
    const c = body[i]!;
    if (c === '"') return undefined;
    if (c !== "\\") {
      const cp = body.codePointAt(i)!;
      const s = String.fromCodePoint(cp);
      bytes.push(...enc.encode(s));
      i += s.length;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    if (e in SIMPLE_ESCAPES && e !== "'") {
      bytes.push(SIMPLE_ESCAPES[e]!.charCodeAt(0));
      i += 2;
      continue;
    }
    const hex = (n: number) => {
      const h = body.slice(i + 2, i + 2 + n);
      return h.length === n && /^[0-9a-fA-F]+$/.test(h) ? parseInt(h, 16) : undefined;
    };
    if (e === "x") {
      const b = hex(2);
      if (b === undefined) return undefined;
      bytes.push(b);
      i += 4;
    } else if (e === "u" || e === "U") {
      const n = e === "u" ? 4 : 8;
      const cp = hex(n);
      if (cp === undefined || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined;
      bytes.push(...enc.encode(String.fromCodePoint(cp)));
      i += 2 + n;
    } else if (e >= "0" && e <= "7") {
      const o = body.slice(i + 1, i + 4);
      if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) > 255) return undefined;
      bytes.push(parseInt(o, 8));
      i += 4;
    } else {
      return undefined;
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array(bytes));
  } catch {
    return undefined;
  }
}

/**
 * Parses the env file `rotor run --mode signal` writes (the Go
 * keyring.EnvFile), as keyring.ParseEnvFile does: `NAME="value"` lines
 * with Go-quoted values; blank lines and `#` comments are skipped, white
 * space around a line is ignored, and a variable that appears twice keeps
 * its last value.
 *
 * @param text - the file's contents
 * @param path - the file's name, for error messages
 * @throws {@link KeyringError} with code `env_file`, naming the line, never its value
 */
export function parseEnvFile(text: string, path = "env file"): Record<string, string> {
  const vars: Record<string, string> = Object.create(null);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    const name = eq > 0 ? line.slice(0, eq) : "";
    const value = eq > 0 ? unquoteGo(line.slice(eq + 1)) : undefined;
    // As keyring.ParseEnvFile: any name without blanks, a Go-quoted value.
    if (name === "" || /[ \t]/.test(name) || value === undefined) {
      throw new KeyringError("env_file", `${path}:${i + 1}: want NAME="value" as rotor run writes it`);
    }
    vars[name] = value;
  }
  return vars;
}
