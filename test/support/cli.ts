import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freeMetricsPorts, freePorts } from './redis.js';
import { testFileDir } from './test-dirs.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A clean environment for a ragline process a test starts, plus `env`: home, caches and temporary folder are the
 * test file's (test/support/setup.ts), and the data dir, unless `env` names one, is a folder of the test file's
 * instead of `.data` in the working directory, so no child falls back to the project's `.data` or the user's
 * ~/.cache.
 */
export function childEnv(env: Record<string, string | undefined> = {}): Record<string, string> {
  const base: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    LOG_LEVEL: 'silent',
    RAGLINE_DATA_DIR: path.join(testFileDir(), 'ragline-data'),
  };
  for (const name of ['HOME', 'XDG_CACHE_HOME', 'XDG_CONFIG_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME', 'TMPDIR']) {
    const value = process.env[name];
    if (value) base[name] = value;
  }
  const merged: Record<string, string> = { ...base };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined) merged[name] = value;
  }
  return merged;
}

/** Runs the real CLI as a user would, with only the given variables added to a clean environment ({@link childEnv}). */
export function runCli(
  args: string[],
  env: Record<string, string> = {},
  options: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: options.cwd,
        env: childEnv(env),
        timeout: options.timeoutMs ?? 60_000,
      },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * A fresh data folder and free ports for a `ragline up` stack started through the CLI, as the environment its
 * child processes get.
 */
export async function cliStackEnv(prefix: string): Promise<{ dataDir: string; env: Record<string, string> }> {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  const [temporal, ui] = await freePorts(2);
  const [metrics] = await freeMetricsPorts(1);
  return {
    dataDir,
    env: {
      RAGLINE_DATA_DIR: dataDir,
      TEMPORAL_PORT: String(temporal),
      TEMPORAL_UI_PORT: String(ui),
      RAGLINE_METRICS_PORT: String(metrics),
    },
  };
}
