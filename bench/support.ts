import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { loadConfig } from '../lib/config.js';
import { ensureTemporalCli, startDevServer, type DevServerHandle } from '../workers/dev-server.js';
import { createLogger } from '../lib/telemetry/logger.js';
import { createRuntime, createWorker, type Runtime, type RuntimeOverrides } from '../workers/runtime.js';
import { workflowBundle } from '../test/support/ragline.js';
import { freePorts } from '../test/support/redis.js';

export interface LatencyFigures {
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  qps: number;
  p50MsSerial: number;
}

const round = (n: number) => Math.round(n * 100) / 100;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? NaN;
}

/**
 * Runs `once` `serial` times one after another (p50 at concurrency 1), then `total` times with `concurrency` in
 * flight (p50/p95/p99 and throughput). A short warm-up runs first and is not counted.
 */
export async function measure(
  once: (i: number) => Promise<unknown>,
  options: { serial: number; total: number; concurrency: number; warmup?: number },
): Promise<LatencyFigures> {
  for (let i = 0; i < (options.warmup ?? 20); i++) await once(-1 - i);
  const serial: number[] = [];
  for (let i = 0; i < options.serial; i++) {
    const started = performance.now();
    await once(i);
    serial.push(performance.now() - started);
  }
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: options.concurrency }, async () => {
      while (next < options.total) {
        const i = next++;
        const t = performance.now();
        await once(options.serial + i);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  serial.sort((a, b) => a - b);
  latencies.sort((a, b) => a - b);
  return {
    p50Ms: round(percentile(latencies, 50)),
    p95Ms: round(percentile(latencies, 95)),
    p99Ms: round(percentile(latencies, 99)),
    qps: round(options.total / elapsedS),
    p50MsSerial: round(percentile(serial, 50)),
  };
}

/**
 * Like {@link measure} for several variants at once, with their serial phases interleaved round by round: on a
 * shared machine the floor drifts by tens of percent over minutes, and ratios between variants measured minutes
 * apart carry that drift. The concurrent phases then run one variant after another.
 */
export async function measureInterleaved<K extends string>(
  variants: Record<K, (i: number) => Promise<unknown>>,
  options: { serial: number; total: number; concurrency: number; warmup?: number },
): Promise<Record<K, LatencyFigures>> {
  const names = Object.keys(variants) as K[];
  const serial = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (const name of names) for (let i = 0; i < (options.warmup ?? 20); i++) await variants[name](-1 - i);
  for (let i = 0; i < options.serial; i++) {
    for (const name of names) {
      const started = performance.now();
      await variants[name](i);
      serial[name].push(performance.now() - started);
    }
  }
  const figures = {} as Record<K, LatencyFigures>;
  for (const name of names) {
    const concurrent = await measure((i) => variants[name](options.serial + i), { ...options, serial: 0, warmup: 0 });
    const sorted = serial[name].sort((a, b) => a - b);
    figures[name] = { ...concurrent, p50MsSerial: round(percentile(sorted, 50)) };
  }
  return figures;
}

/**
 * A dev server as `ragline up` starts it (SQLite file; tuned unless told otherwise), a client and a ragline worker
 * that runs the bench workflows' bundle (bench/workflows/: production's workflows plus floorWorkflow and the other
 * bench-only ones).
 */
export interface BenchStack {
  server: DevServerHandle;
  client: Client;
  /** The worker's connection: a client over it can start workflows eagerly on that worker. */
  nativeConnection: NativeConnection;
  runtime: Runtime;
  worker: Worker;
  taskQueue: string;
  stop(): Promise<void>;
}

export async function startBenchStack(
  options: { tuned: boolean; config?: Record<string, string>; overrides?: RuntimeOverrides } = { tuned: true },
): Promise<BenchStack> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-bench-'));
  const [port = 0, uiPort = 0] = await freePorts(2);
  const server = await startDevServer({
    cliPath: ensureTemporalCli(process.env.TEMPORAL_CLI_PATH),
    dbFile: path.join(dir, 'temporal.sqlite'),
    port,
    uiPort,
    namespace: 'default',
    tuned: options.tuned,
  });
  const config = loadConfig({ ...process.env, RAGLINE_DATA_DIR: dir, LOG_LEVEL: 'silent', ...options.config });
  const runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }), ...options.overrides });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'ragline-bench';
  const worker = await createWorker({
    connection: nativeConnection,
    namespace: 'default',
    taskQueue,
    runtime,
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: 'default' });
  return {
    server,
    client,
    nativeConnection,
    runtime,
    worker,
    taskQueue,
    async stop() {
      worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
      await runtime.close();
      await server.stop();
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}
