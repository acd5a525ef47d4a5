// The key ids in use, for rotor's verify step (`consumers:` in rotor.yaml)
// and adoption-gated revoke. Key ids only, never values.
import { healthRoute } from "@rotor-dev/keyring/nextjs";

import { getKeyring } from "@/lib/keys";

export const dynamic = "force-dynamic";

export const GET = healthRoute(getKeyring);
