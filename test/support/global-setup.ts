import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The folder this test run owns; every file's state lives under it (see test/support/setup.ts). */
    runDir: string;
  }
}

/**
 * One fresh folder per `vitest run`, removed when the run ends: each test file's home, caches, data dirs and
 * server storage live under it, so no run reads what an earlier run (or the user's own ragline) left behind, and a
 * second run on a machine takes the same paths as the first.
 */
export default function setup(project: TestProject): () => void {
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'ragline-test-run-'));
  project.provide('runDir', runDir);
  return () => rmSync(runDir, { recursive: true, force: true });
}
