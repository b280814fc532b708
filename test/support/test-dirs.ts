/**
 * The folder test/support/setup.ts made for this test file under the run's folder (test/support/global-setup.ts):
 * home, caches and temporary folder of the file's process. Fails outside a vitest run, where no folder was made.
 */
export function testFileDir(): string {
  const dir = process.env.RAGLINE_TEST_FILE_DIR;
  if (!dir)
    throw new Error('RAGLINE_TEST_FILE_DIR is unset: test/support/setup.ts makes it (run the tests with vitest)');
  return dir;
}
