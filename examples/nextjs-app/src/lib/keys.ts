// One keyring of Clerk secret keys per process, fed by the environment at
// start and then by whichever source rotor uses: the env file on SIGHUP
// (rotor run --mode signal) or the watch stream of rotor serve.
import "server-only";

import { Keyring, Watcher, reloadOnSignal } from "@rotor-dev/keyring";
import { createClerkClient, type ClerkFallbackClient } from "@rotor-dev/keyring/clerk";
import { sharedKeyring } from "@rotor-dev/keyring/nextjs";

import { clerkKeys, env } from "@/env";

export function getKeyring(): Keyring {
  return sharedKeyring("CLERK_SECRET_KEY", () => {
    const keyring = new Keyring(clerkKeys.keySet(env));
    if (env.CLERK_ENV_FILE) {
      reloadOnSignal(keyring, {
        envFile: env.CLERK_ENV_FILE,
        name: "CLERK_SECRET_KEY",
        format: "clerk-secret-key",
        onError: (err) => console.error(`clerk keys not reloaded, keeping key ${keyring.current}: ${err.message}`),
        onReload: () => console.log(`clerk keys reloaded: current key ${keyring.current}`),
      });
    }
    if (env.ROTOR_WATCH_URL && env.ROTOR_APP_TOKEN) {
      new Watcher(env.ROTOR_WATCH_URL, env.ROTOR_APP_TOKEN, {
        onError: (err) => console.error(`rotor watch: ${err.message}`),
      }).start(keyring);
    }
    return keyring;
  });
}

const CLIENT = Symbol.for("rotor-example/clerk-client");

/** The Clerk Backend API client: current key first, previous key on a 401 clerk_key_invalid. */
export function getClerk(): ClerkFallbackClient {
  const g = globalThis as typeof globalThis & { [CLIENT]?: ClerkFallbackClient };
  return (g[CLIENT] ??= createClerkClient(getKeyring(), {
    apiUrl: env.CLERK_API_URL,
    publishableKey: env.CLERK_PUBLISHABLE_KEY ?? env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY,
    onFallback: (e) => console.warn(`Clerk rejected key ${e.from} in ${e.operation}; retried with key ${e.to}`),
  }));
}
