/**
 * The chaos harness: the real stack (a Temporal dev server on a SQLite file, redis-server, the OpenAI-compatible
 * test server, two `ragline worker` processes), load through RaglineClient, faults injected between and during
 * load phases. Shared by the short form in the test suite and `npm run chaos`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { runLoad, DEFAULT_LOAD, readSampleQuestions, type LoadReport, type LoadSample } from '../../cli/load.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { loadConfig } from '../../lib/config.js';
import { ensureTemporalCli, startDevServer, type DevServerHandle } from '../../workers/dev-server.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { TestQdrant } from '../support/qdrant.js';
import { tempDir } from '../support/ragline.js';
import { freePorts, TestRedis } from '../support/redis.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(ROOT, 'bin/ragline.mjs');
export const QUESTIONS = readSampleQuestions(path.join(ROOT, 'sample-corpus/ground-truth.jsonl'));

export interface BreakerTransition {
  worker: string;
  dependency: string;
  to: string;
}

export interface WorkerHandle {
  name: string;
  child: ChildProcess;
  transitions: BreakerTransition[];
  exited: Promise<void>;
}

export interface Stack {
  temporal: DevServerHandle;
  redis: TestRedis;
  llm: FakeOpenAI;
  /** With `store: 'qdrant'`: the proxy every worker reaches Qdrant through, to make the store fail or hang. */
  storeProxy?: FaultProxy;
  workers: WorkerHandle[];
  client: RaglineClient;
  /** The Temporal client under {@link client}, to read a slow query's history. */
  temporalClient: Client;
  env: Record<string, string>;
  startWorker(name: string): Promise<WorkerHandle>;
  restartTemporal(): Promise<void>;
  transitions(): BreakerTransition[];
  stop(): Promise<void>;
}

export interface StackOptions {
  workers?: number;
  env?: Record<string, string>;
  /**
   * `qdrant`: one real Qdrant server shared by the workers, reached through a {@link FaultProxy}, so the store can
   * fail and hang; `embedded`: each worker's own copy of the embedded index. @default embedded
   */
  store?: 'embedded' | 'qdrant';
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const dataDir = await tempDir('ragline-chaos-');
  const [temporalPort = 0, uiPort = 0] = await freePorts(2);
  const dbFile = path.join(dataDir, 'temporal.sqlite');
  const cliPath = ensureTemporalCli(process.env.TEMPORAL_CLI_PATH);
  const devServer = () => startDevServer({ cliPath, dbFile, port: temporalPort, uiPort, namespace: 'default' });
  let temporal = await devServer();
  const redis = await TestRedis.start();
  const llm = await startFakeOpenAI();
  const qdrant = options.store === 'qdrant' ? await TestQdrant.start() : undefined;
  const storeProxy = qdrant ? await FaultProxy.start(qdrant.url) : undefined;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    LOG_LEVEL: 'info',
    TEMPORAL_ADDRESS: temporal.address,
    RAGLINE_TASK_QUEUE: 'ragline-chaos',
    RAGLINE_DATA_DIR: path.join(dataDir, 'worker'),
    RAGLINE_METRICS_PORT: '0',
    REDIS_URL: redis.url,
    OPENAI_BASE_URL: llm.baseURL,
    OPENAI_API_KEY: 'chaos',
    OPENAI_MODEL: 'fake-model',
    OPENAI_TIMEOUT_MS: '3000',
    RAGLINE_QUERY_DEADLINE_MS: '10000',
    RAGLINE_BREAKER_WINDOW: '8',
    RAGLINE_BREAKER_MIN_CALLS: '4',
    RAGLINE_BREAKER_OPEN_MS: '2000',
    ...(storeProxy ? { QDRANT_URL: storeProxy.url, QDRANT_COLLECTION: 'ragline_chaos' } : {}),
    ...options.env,
  };
  const workers: WorkerHandle[] = [];
  const startWorker = async (name: string): Promise<WorkerHandle> => {
    // One process owns a data dir: each worker gets its own, with a copy of the first worker's index (the corpus is
    // ingested once, then only read).
    const own = path.join(dataDir, name);
    if (workers.length > 0 && !storeProxy) {
      await fs.cp(path.join(env.RAGLINE_DATA_DIR ?? '', 'index'), path.join(own, 'index'), { recursive: true });
    }
    const workerEnv = workers.length > 0 ? { ...env, RAGLINE_DATA_DIR: own } : env;
    const child = spawn(process.execPath, [BIN, 'worker'], {
      cwd: ROOT,
      env: workerEnv,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const handle: WorkerHandle = {
      name,
      child,
      transitions: [],
      exited: new Promise((resolve) => child.once('exit', () => resolve())),
    };
    let buffered = '';
    let tail = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (data: Buffer) => {
        buffered += data.toString();
        tail = (tail + data.toString()).slice(-2000);
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          if (line.startsWith('worker polling')) resolve();
          const match = /"dependency":"(\w+)","breaker":"([\w-]+)"/.exec(line);
          if (match) handle.transitions.push({ worker: name, dependency: match[1] ?? '', to: match[2] ?? '' });
        }
      });
      child.once('exit', (code) => reject(new Error(`worker ${name} exited with ${code} during start-up:\n${tail}`)));
    });
    workers.push(handle);
    return handle;
  };
  await startWorker('worker-1');
  // The client connects to the address directly: envconfig reads this process's environment, not the workers'.
  const config = loadConfig(env);
  const connection = await Connection.connect({ address: temporal.address });
  const temporalClient = new Client({ connection });
  const client = new RaglineClient(temporalClient, env.RAGLINE_TASK_QUEUE ?? 'ragline-chaos', {
    maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
    ingestBatch: config.RAGLINE_INGEST_BATCH,
    deadlineMs: config.RAGLINE_QUERY_DEADLINE_MS,
  });
  await client.ingest([path.join(ROOT, 'sample-corpus/docs')]);
  // The second worker opens the embedded index after ingestion, so both serve the same corpus (queries only read it).
  if ((options.workers ?? 2) > 1) await startWorker('worker-2');
  return {
    get temporal() {
      return temporal;
    },
    redis,
    llm,
    storeProxy,
    workers,
    client,
    temporalClient,
    env,
    startWorker,
    async restartTemporal() {
      await temporal.stop();
      temporal = await devServer();
    },
    transitions: () => workers.flatMap((w) => w.transitions),
    async stop() {
      await client.close().catch(() => undefined);
      for (const w of workers) {
        if (w.child.exitCode === null && w.child.signalCode === null) {
          w.child.kill('SIGTERM');
          setTimeout(() => w.child.kill('SIGKILL'), 10_000).unref();
        }
        await w.exited;
      }
      await Promise.allSettled([temporal.stop(), redis.stop(), llm.close(), storeProxy?.close()]);
      await qdrant?.stop();
    },
  } satisfies Stack as Stack;
}

export interface FaultReport {
  fault: string;
  sent: number;
  answered: number;
  errors: number;
  lost: number;
  degradedByReason: Record<string, number>;
  p99Ms: number;
  maxMs: number;
  breakerTransitions: BreakerTransition[];
  /** The slowest answered query of the phase: its id and latency as the client saw it. */
  slowest?: { queryId: string; latencyMs: number };
  load: LoadReport;
}

/**
 * One phase: `users × queries` through the service while `during(done)` is called after each answer, so a fault can
 * be injected part-way through; `after` undoes it once the phase's queries have all come back.
 */
export async function phase(
  stack: Stack,
  fault: string,
  load: { users: number; queries: number; concurrency?: number; seed?: number; newShare?: number },
  hooks: { before?: () => Promise<void>; during?: (done: number) => void; after?: () => Promise<void> } = {},
): Promise<FaultReport> {
  const seen = stack.transitions().length;
  let slowest: FaultReport['slowest'];
  await hooks.before?.();
  const report = await runLoad(
    stack.client,
    QUESTIONS,
    {
      ...DEFAULT_LOAD,
      users: load.users,
      queriesPerUser: load.queries,
      concurrency: load.concurrency ?? 8,
      seed: load.seed ?? fault.length,
      newShare: load.newShare ?? DEFAULT_LOAD.newShare,
    },
    {
      onDone: (sample: LoadSample, done: number) => {
        if (sample.result && sample.latencyMs > (slowest?.latencyMs ?? -1)) {
          slowest = { queryId: sample.result.queryId, latencyMs: sample.latencyMs };
        }
        hooks.during?.(done);
      },
    },
  );
  await hooks.after?.();
  return {
    fault,
    sent: report.sent,
    answered: report.answered,
    errors: report.errors,
    lost: report.lost,
    degradedByReason: report.degradedByReason,
    p99Ms: report.latencyMs.all.p99,
    maxMs: report.latencyMs.all.max,
    breakerTransitions: stack.transitions().slice(seen),
    slowest,
    load: report,
  };
}

/**
 * Where a query's time went, from its history: each event's offset from the start, with the activity it concerns
 * and which timeout fired. One line, for the chaos report's slowest query of a phase.
 */
export async function timeline(stack: Stack, queryId: string): Promise<string> {
  const history = await stack.temporalClient.workflow.getHandle(queryId).fetchHistory();
  const events = history.events ?? [];
  const at = (e: (typeof events)[number]) => {
    const t = e.eventTime;
    return Number(t?.seconds ?? 0) * 1000 + Math.round((t?.nanos ?? 0) / 1e6);
  };
  const start = events[0] ? at(events[0]) : 0;
  const names = new Map<string, string>();
  return events
    .map((e) => {
      const type = String(proto.temporal.api.enums.v1.EventType[e.eventType ?? 0] ?? e.eventType)
        .replace(/^EVENT_TYPE_/, '')
        .toLowerCase();
      const scheduled = e.activityTaskScheduledEventAttributes;
      if (scheduled) names.set(String(e.eventId), scheduled.activityType?.name ?? '?');
      const activity =
        scheduled?.activityType?.name ??
        names.get(
          String(
            e.activityTaskStartedEventAttributes?.scheduledEventId ??
              e.activityTaskCompletedEventAttributes?.scheduledEventId ??
              e.activityTaskFailedEventAttributes?.scheduledEventId ??
              e.activityTaskTimedOutEventAttributes?.scheduledEventId ??
              '',
          ),
        );
      const timeout =
        e.workflowTaskTimedOutEventAttributes?.timeoutType ??
        e.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType;
      return `+${at(e) - start} ${type}${activity ? `(${activity})` : ''}${timeout !== undefined && timeout !== null ? `[timeout ${timeout}]` : ''}`;
    })
    .join(' ');
}

export function formatFault(r: FaultReport): string {
  const reasons = Object.entries(r.degradedByReason).map(([k, n]) => `${k} ${n}`);
  const transitions = r.breakerTransitions.map((t) => `${t.worker}:${t.dependency}→${t.to}`);
  return [
    `${r.fault}: sent ${r.sent}, answered ${r.answered}, errors ${r.errors}, lost ${r.lost}, p99 ${r.p99Ms} ms (max ${r.maxMs} ms)`,
    `  degraded: ${reasons.length > 0 ? reasons.join(', ') : 'none'}`,
    `  breaker transitions: ${transitions.length > 0 ? transitions.join(' ') : 'none'}`,
    ...(r.slowest ? [`  slowest: ${r.slowest.queryId} ${r.slowest.latencyMs} ms`] : []),
  ].join('\n');
}

/**
 * After a fault is lifted: small phases of new questions (each reaches the dependency, so it can be the half-open
 * probe) until every worker whose breaker for `dependency` opened since `since` shows it closed again. Returns the
 * phases run; the caller asserts on them. Bounded by `maxPhases`, so a breaker that never closes fails the caller's
 * assertion rather than hanging the suite.
 */
export async function untilClosed(
  stack: Stack,
  dependency: string,
  since: number,
  options: { maxPhases?: number; seed?: number } = {},
): Promise<FaultReport[]> {
  const reports: FaultReport[] = [];
  const pending = () => {
    const recent = stack.transitions().slice(since);
    const opened = new Set(recent.filter((t) => t.dependency === dependency && t.to === 'open').map((t) => t.worker));
    return [...opened].filter((worker) => {
      const states = recent.filter((t) => t.worker === worker && t.dependency === dependency).map((t) => t.to);
      return states.lastIndexOf('closed') < states.lastIndexOf('open');
    });
  };
  for (let i = 0; i < (options.maxPhases ?? 40) && pending().length > 0; i += 1) {
    const seed = (options.seed ?? 7000) + i;
    reports.push(await phase(stack, `${dependency} recovery ${i + 1}`, { users: 2, queries: 2, seed, newShare: 1 }));
  }
  return reports;
}
