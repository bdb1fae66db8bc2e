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
        bindings: { ADMIN_TOKEN: 'test-admin-token', ROOMS_PER_MIN: '1000', CONNECTIONS_PER_CLIENT: '100000' },
      },
    }),
  ],
  test: {
    include: ['tests/workers/**/*.test.ts', 'wasm/**/*.workers.test.ts'],
    testTimeout: 20_000,
  },
});
