import { defineConfig } from 'vitest/config';

// Integration tests share one PostgreSQL server and one Redis: each file gets its own database
// and queue prefix, but files run one at a time to keep the 2-core machine honest.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
  },
});
