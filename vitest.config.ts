import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One folder per run for every file's home, caches and data (global-setup.ts), one per file under it (setup.ts).
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/setup.ts'],
    // Integration files each start a Temporal dev server; two cores run two files at a time comfortably.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // summary-reporter.ts writes the counts .ci/run prints, including failed hooks and errors outside any test.
    reporters: ['default', ['json', { outputFile: 'test-results/vitest.json' }], './test/support/summary-reporter.ts'],
  },
});
