import { mkdirSync, mkdtempSync } from 'node:fs';
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { inject } from 'vitest';

// Worker state changes and the like at INFO drown the test output; warnings and errors still show.
Runtime.install({ logger: new DefaultLogger('WARN') });

// Each test file gets its own folder under the run's (test/support/global-setup.ts) and makes it home, caches and
// temporary folder of this process and of every child that inherits the environment: nothing a test does reaches
// the user's home, ~/.cache or the project's .data, and files cannot see each other's state.
const fileDir = mkdtempSync(path.join(inject('runDir'), 'file-'));
process.env.RAGLINE_TEST_FILE_DIR = fileDir;
for (const [name, dir] of Object.entries(testFileDirs(fileDir))) {
  mkdirSync(dir, { recursive: true });
  process.env[name] = dir;
}

function testFileDirs(root: string): Record<string, string> {
  return {
    HOME: path.join(root, 'home'),
    XDG_CACHE_HOME: path.join(root, 'cache'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'data'),
    XDG_STATE_HOME: path.join(root, 'state'),
    TMPDIR: path.join(root, 'tmp'),
  };
}
