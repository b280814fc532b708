import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { createConnection } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_TYPES } from '../contracts/search-attributes.js';

export const TEMPORAL_CLI_VERSION = 'v1.5.1';
const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const TOOLS_BIN_DIR = path.join(projectRoot, '.tools', 'bin');

/**
 * Dynamic configuration that makes the single-process dev server answer at the speed of its store.
 * Measured on a 2-core machine with a workflow running one no-op local activity: the default server holds
 * every new task in its history queues' poll loop for ~40 ms (p50 42–50 ms at concurrency 1); raising the
 * queue processors' poll rate takes p50 to 24–27 ms, and a one-remote-activity workflow from 145 to 40 ms.
 * `npm run bench -- floor` re-measures both side by side.
 */
export const TUNED_DYNAMIC_CONFIG: Record<string, number> = {
  'history.transferProcessorMaxPollRPS': 10000,
  'history.timerProcessorMaxPollRPS': 10000,
  'history.visibilityProcessorMaxPollRPS': 10000,
};

/**
 * SQLite in WAL mode with normal sync: throughput at concurrency 16 went from 26–31 to 50–60 workflows/s,
 * the same as the in-memory store, while histories still survive a restart.
 */
export const SQLITE_PRAGMAS: Record<string, string> = { journal_mode: 'wal', synchronous: 'normal' };

/** Extra `temporal server start-dev` arguments: the tuning above and ragline's search attributes. */
export function devServerArgs(options: { tuned?: boolean; sqlite?: boolean } = {}): string[] {
  const { tuned = true, sqlite = false } = options;
  const args: string[] = [];
  if (tuned) {
    for (const [key, value] of Object.entries(TUNED_DYNAMIC_CONFIG))
      args.push('--dynamic-config-value', `${key}=${value}`);
    if (sqlite)
      for (const [key, value] of Object.entries(SQLITE_PRAGMAS)) args.push('--sqlite-pragma', `${key}=${value}`);
  }
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTE_TYPES)) args.push('--search-attribute', `${name}=${type}`);
  return args;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && fs.existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** TEMPORAL_CLI_PATH, then PATH, then the git-ignored tools folder. */
export function findTemporalCli(explicitPath?: string): string | undefined {
  if (explicitPath) {
    if (!fs.existsSync(explicitPath))
      throw new Error(`TEMPORAL_CLI_PATH points at ${explicitPath}, which does not exist`);
    return explicitPath;
  }
  const local = path.join(TOOLS_BIN_DIR, 'temporal');
  return onPath('temporal') ?? (fs.existsSync(local) ? local : undefined);
}

/**
 * Finds the temporal CLI or builds it with `go install` into the tools folder (about 5 minutes on a fresh
 * machine; the SDK's own download of the dev server needs the internet, the Go module proxy does not).
 */
export function ensureTemporalCli(explicitPath?: string, log: (line: string) => void = console.error): string {
  const found = findTemporalCli(explicitPath);
  if (found) return found;
  log(
    `temporal CLI not found: building ${TEMPORAL_CLI_VERSION} with go install into ${TOOLS_BIN_DIR} (a few minutes, once)`,
  );
  fs.mkdirSync(TOOLS_BIN_DIR, { recursive: true });
  const result = spawnSync('go', ['install', `github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}`], {
    env: { ...process.env, CGO_ENABLED: '0', GOBIN: TOOLS_BIN_DIR },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (result.error || result.status !== 0) {
    throw new Error(
      `could not build the temporal CLI (go install exited ${result.status ?? result.error?.message}); ` +
        'install Go or set TEMPORAL_CLI_PATH to a temporal binary',
    );
  }
  return path.join(TOOLS_BIN_DIR, 'temporal');
}

export interface DevServerHandle {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` as a child process with the Web UI and a SQLite file, tuned. Refuses a port that
 * something already listens on (it would be taken for our server), waits until the listener answers as a Temporal
 * frontend, and stops what it spawned if start-up fails or times out.
 */
export async function startDevServer(options: {
  cliPath: string;
  dbFile: string;
  port: number;
  uiPort: number;
  namespace: string;
  tuned?: boolean;
  /** How long start-up may take. @default 30000 */
  timeoutMs?: number;
  log?: (line: string) => void;
}): Promise<DevServerHandle> {
  if (await portOpen(options.port)) {
    throw new Error(
      `port ${options.port} is already in use on 127.0.0.1: stop what listens there, or set TEMPORAL_PORT to a free ` +
        'port (or TEMPORAL_ADDRESS to use a Temporal server that is already running)',
    );
  }
  fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(options.port),
    '--ui-port',
    String(options.uiPort),
    '--db-filename',
    options.dbFile,
    '--namespace',
    options.namespace,
    '--log-level',
    'error',
    ...devServerArgs({ tuned: options.tuned ?? true, sqlite: true }),
  ];
  const child = spawn(options.cliPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (data: Buffer) => {
    output = (output + data.toString()).slice(-4000);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  // A spawn failure (no such binary) arrives as an event; without a listener it would crash the process.
  let spawnError: Error | undefined;
  child.once('error', (error) => (spawnError = error));
  const address = `127.0.0.1:${options.port}`;
  const stop = () => stopChild(child);
  try {
    await waitForFrontend(address, options.timeoutMs ?? 30_000, () => {
      if (spawnError) return `could not run ${options.cliPath}: ${spawnError.message}`;
      return child.exitCode !== null || child.signalCode !== null ? output : undefined;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { address, uiUrl: `http://127.0.0.1:${options.uiPort}`, process: child, stop };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** True once the listener at `address` answers the frontend's GetSystemInfo: an open port alone proves nothing. */
async function isTemporalFrontend(address: string): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 1000 });
    await connection.workflowService.getSystemInfo({});
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

async function waitForFrontend(address: string, timeoutMs: number, exited: () => string | undefined): Promise<void> {
  const port = Number(address.slice(address.lastIndexOf(':') + 1));
  const deadline = Date.now() + timeoutMs;
  let listening = false;
  for (;;) {
    const crashed = exited();
    if (crashed !== undefined) throw new Error(`temporal dev server exited during start-up:\n${crashed}`);
    listening = await portOpen(port);
    if (listening && (await isTemporalFrontend(address))) return;
    if (Date.now() > deadline) {
      throw new Error(
        listening
          ? `the process listening on port ${port} is not a Temporal frontend (no answer to GetSystemInfo within ${timeoutMs} ms)`
          : `temporal dev server did not listen on port ${port} within ${timeoutMs} ms`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
