import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration files each start their own bridge; S3 is shared and started once.
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
  },
});
