// Runs once when the server starts: make the keyring now, so that the
// SIGHUP listener is in place before rotor run can signal (Node's default
// action for SIGHUP is to exit).
export async function register() {
  if (process.env.NEXT_RUNTIME === "nodejs") {
    const { getKeyring } = await import("@/lib/keys");
    console.log(`clerk keys loaded: current key ${getKeyring().current}`);
  }
}
