import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Each test file runs in its own process; the end-to-end files spawn the CLI (and git, npm, tar)
    // many times, so two files at a time keep a 2-core machine busy without starving timed tests.
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
  },
});
