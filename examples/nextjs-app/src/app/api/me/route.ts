// The signed-in user, as the proxy authenticated the request (session
// token verified against the instance JWKS the keyring fetched).
import { auth } from "@clerk/nextjs/server";

export const dynamic = "force-dynamic";

export async function GET() {
  const { userId, sessionId } = await auth();
  if (!userId) return Response.json({ error: "signed out" }, { status: 401 });
  return Response.json({ user_id: userId, session_id: sessionId });
}
