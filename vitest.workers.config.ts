import { defineConfig } from 'vitest/config';
import { cloudflareTest } from '@cloudflare/vitest-plugin';

// Unit and integration tests inside workerd, against the real bindings of
// wrangler.toml. Short limits so expiry and throttling are testable quickly.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        // Loopback tests share one client address: the open-connection limit is
        // tested with its own low value per request (tests/workers/connections.test.ts).
        // MATCH_BURST_S: match tests send up to 26 s of audio at once, and one
        // checks the real-time limit by sending more than this.
        bindings: { ADMIN_TOKEN: 'test-admin-token', ROOMS_PER_MIN: '1000', CONNECTIONS_PER_CLIENT: '100000', MATCH_BURST_S: '28' },
      },
    }),
  ],
  test: {
    include: ['tests/workers/**/*.test.ts', 'wasm/**/*.workers.test.ts'],
    setupFiles: ['tests/workers/settle.ts'],
    testTimeout: 20_000,
  },
});
