export default function Home() {
  return (
    <main>
      <h1>rotor Next.js example</h1>
      <p>
        <a href="/api/users">/api/users</a> calls Clerk&apos;s Backend API with the rotated key;{" "}
        <a href="/api/health">/api/health</a> reports the key ids in use; /api/me needs a Clerk session.
      </p>
    </main>
  );
}
