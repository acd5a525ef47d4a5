// Calls Clerk's Backend API with the current key; if Clerk rejects it (the
// key was revoked before this process got the new one), the client retries
// with the previous key, so the request still succeeds.
import { getClerk } from "@/lib/keys";

export const dynamic = "force-dynamic";

export async function GET() {
  try {
    const { totalCount } = await getClerk().users.getUserList({ limit: 1 });
    return Response.json({ total_count: totalCount });
  } catch (err) {
    console.error(`list Clerk users: ${(err as Error).message}`);
    return Response.json({ error: "Clerk is unavailable" }, { status: 502 });
  }
}
