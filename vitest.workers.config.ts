import { defineConfig } from 'vitest/config';
import { cloudflareTest } from '@cloudflare/vitest-plugin';

// Unit and integration tests inside workerd, against the real bindings of
// wrangler.toml. Short limits so expiry and throttling are testable quickly.
export default defineConfig({
  plugins: [
    cloudflareTest({
      wrangler: { configPath: './wrangler.toml' },
      miniflare: {
        bindings: { ADMIN_TOKEN: 'test-admin-token', ROOMS_PER_MIN: '1000' },
      },
    }),
  ],
  test: {
    include: ['tests/workers/**/*.test.ts', 'wasm/**/*.workers.test.ts'],
    testTimeout: 20_000,
  },
});
