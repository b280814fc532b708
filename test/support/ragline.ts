import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { loadConfig, type Config } from '../../lib/config.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { createRuntime, createWorker, type Runtime, type RuntimeOverrides } from '../../workers/runtime.js';
import { ingestDocumentsWorkflow } from '../../workflows/index.js';
import type { IngestDocumentsResult } from '../../contracts/ingest.js';
import { startTestTemporal } from './temporal.js';

export const SAMPLE_CORPUS = path.resolve(import.meta.dirname, '../../sample-corpus/docs');

/** Production's workflows plus the bench-only ones (floorWorkflow, whose histories test/replay replays). */
const TEST_WORKFLOWS = path.resolve(import.meta.dirname, '../../bench/workflows/index.ts');

let bundle: Promise<{ code: string }> | undefined;
/** Workflow code bundled once per test file (or bench run), from the bench and test entry {@link TEST_WORKFLOWS}. */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({ workflowsPath: TEST_WORKFLOWS, logger: quietBundlerLogger });
  return bundle;
}

/** Keeps the workflow bundler's progress lines out of test and benchmark output; errors still show. */
export const quietBundlerLogger = {
  log() {},
  trace() {},
  debug() {},
  info() {},
  warn() {},
  error(message: string, meta?: unknown) {
    console.error(message, meta);
  },
};

export async function tempDir(prefix = 'ragline-test-'): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), prefix));
}

/**
 * Config as a test sees it. Under vitest the data dir defaults to the test file's folder (test/support/setup.ts),
 * never to `.data` in the working directory; the benches, which reuse this outside vitest, pass their own.
 */
export function testConfig(overrides: Record<string, string> = {}): Config {
  const fileDir = process.env.RAGLINE_TEST_FILE_DIR;
  const dataDir = fileDir ? { RAGLINE_DATA_DIR: path.join(fileDir, 'ragline-data') } : {};
  return loadConfig({ LOG_LEVEL: 'silent', ...dataDir, ...overrides });
}

/** A running ragline worker on a real dev server, on its own task queue, with injectable parts. */
export interface TestRagline {
  env: TestWorkflowEnvironment;
  runtime: Runtime;
  worker: Worker;
  taskQueue: string;
  dataDir: string;
  /**
   * ragline's client over `env.client` and this task queue: its sub-clients (`evaluation`, `improvement`) reach the
   * long-running workflows. `stop` leaves its connection alone: it is the environment's.
   */
  client: RaglineClient;
  /** Runs the ingestion workflow on this worker's task queue. */
  ingest(paths: string[], tenant?: string): Promise<IngestDocumentsResult>;
  stop(): Promise<void>;
}

export async function startRagline(
  options: { env?: TestWorkflowEnvironment; config?: Record<string, string>; overrides?: RuntimeOverrides } = {},
): Promise<TestRagline> {
  const env = options.env ?? (await startTestTemporal());
  const dataDir = await tempDir();
  const config = testConfig({ RAGLINE_DATA_DIR: dataDir, ...options.config });
  const runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }), ...options.overrides });
  const taskQueue = `ragline-test-${randomUUID()}`;
  const worker = await createWorker({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    runtime,
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  return {
    env,
    runtime,
    worker,
    taskQueue,
    dataDir,
    client: new RaglineClient(env.client, taskQueue, { maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS }),
    ingest: (paths, tenant) =>
      env.client.workflow.execute(ingestDocumentsWorkflow, {
        taskQueue,
        workflowId: `ingest-${randomUUID()}`,
        args: [{ paths, tenant }],
      }),
    async stop() {
      // A test may have stopped the worker already (to restart on another one).
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await runtime.close();
      if (!options.env) await env.teardown();
      await fs.rm(dataDir, { recursive: true, force: true });
    },
  };
}
