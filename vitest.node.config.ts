import { defineConfig } from 'vitest/config';

// Node-side tests: DSP on Node, the client library, the CLI, and end-to-end
// tests that start the real worker on workerd and drive it over the network.
export default defineConfig({
  test: {
    include: ['wasm/**/*.test.ts', 'src/**/*.test.ts', 'agent/**/*.test.ts', 'web/**/*.test.ts', 'tests/e2e/**/*.test.ts'],
    exclude: ['**/*.workers.test.ts', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
  },
});
