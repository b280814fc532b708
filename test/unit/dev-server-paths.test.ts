import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TOOLS_BIN_DIR } from '../../workers/dev-server.js';

describe('dev-server launcher paths', () => {
  it("keeps the temporal CLI in the project's own .tools/bin, where make installs it", () => {
    const projectRoot = path.resolve(import.meta.dirname, '../..');
    expect(existsSync(path.join(projectRoot, 'package.json'))).toBe(true);
    // After the launcher moved from lib/temporal/ to workers/, '../..' pointed one folder above the project.
    expect(TOOLS_BIN_DIR).toBe(path.join(projectRoot, '.tools', 'bin'));
  });
});
