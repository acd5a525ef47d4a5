// The app's environment, validated once at start with @t3-oss/env-nextjs.
//
// Under `rotor run` the Clerk secret key arrives as CLERK_SECRET_KEY,
// CLERK_SECRET_KEY_PRIMARY, CLERK_SECRET_KEY_SECONDARY and their key ids;
// rotorKeyEnv gives their schemas (a malformed key is reported by variable
// name, never printed). SKIP_ENV_VALIDATION=1 lets `next build` run
// without secrets, as in T3 apps.
import { createEnv } from "@t3-oss/env-nextjs";
import { rotorKeyEnv } from "@rotor-dev/keyring/env";
import { z } from "zod";

export const clerkKeys = rotorKeyEnv("CLERK_SECRET_KEY", { format: "clerk-secret-key" });

export const env = createEnv({
  server: {
    ...clerkKeys.server,
    // Clerk's Backend API (default https://api.clerk.com); the tests point it at the emulator.
    CLERK_API_URL: z.url().optional(),
    // Signal mode: the env file `rotor run --mode signal --env-file F` rewrites before its SIGHUP.
    CLERK_ENV_FILE: z.string().min(1).optional(),
    // Push mode: rotor serve's watch stream for the secret, and an app token for it.
    ROTOR_WATCH_URL: z.url().optional(),
    ROTOR_APP_TOKEN: z.string().min(1).optional(),
    // The instance's publishable key at run time (NEXT_PUBLIC_ values are fixed at build time).
    CLERK_PUBLISHABLE_KEY: z.string().startsWith("pk_").optional(),
  },
  client: {
    NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY: z.string().startsWith("pk_").optional(),
  },
  runtimeEnv: {
    ...clerkKeys.runtimeEnv(),
    CLERK_API_URL: process.env.CLERK_API_URL,
    CLERK_ENV_FILE: process.env.CLERK_ENV_FILE,
    ROTOR_WATCH_URL: process.env.ROTOR_WATCH_URL,
    ROTOR_APP_TOKEN: process.env.ROTOR_APP_TOKEN,
    CLERK_PUBLISHABLE_KEY: process.env.CLERK_PUBLISHABLE_KEY,
    NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY: process.env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY,
  },
  skipValidation: !!process.env.SKIP_ENV_VALIDATION,
  emptyStringAsUndefined: true,
});
