// Authenticates every API request with Clerk, using the keyring's key (the
// one Clerk currently accepts) and the instance JWKS fetched with fallback,
// instead of a CLERK_SECRET_KEY read once at start. Next.js 16 runs
// proxy.ts on the Node.js runtime, where the keyring lives.
import { clerkMiddleware } from "@rotor-dev/keyring/nextjs";

import { env } from "@/env";
import { getKeyring } from "@/lib/keys";

export default clerkMiddleware(getKeyring, undefined, () => ({
  publishableKey: env.CLERK_PUBLISHABLE_KEY ?? env.NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY,
}));

export const config = {
  matcher: ["/api/me"],
};
