import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freeMetricsPorts, freePorts } from './redis.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real CLI as a user would, with only the given variables added to a clean environment. */
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
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'silent', ...env },
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
