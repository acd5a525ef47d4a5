/** @type {import('next').NextConfig} */
const nextConfig = {
  // The example lives in an npm workspace; trace files from its root.
  outputFileTracingRoot: new URL("../..", import.meta.url).pathname,
};

export default nextConfig;
