/**
 * `npm run bench -- cache [--total N] [--serial N] [--concurrency N]`: the query path through Temporal on the tuned
 * dev server, first with the embedded (in-process) cache, then with Redis. Variants, measured on the same stack:
 * - `floor`: the one-no-op-local-activity workflow every latency goal is a ratio to;
 * - `hit`: `answerQueryWorkflow` served from the exact result cache (local-activity lookup);
 * - `naiveHit`: the same lookup as an ordinary remote activity (bench/workflows/naive-hit.ts, on a second worker);
 * - `miss`: cache bypassed, embedded retrieval and generation, cycling through the ground-truth questions.
 * Goals (issue #4), per backend: hit.p50MsSerial ≤ 1.2 × floor.p50MsSerial, hit.qps ≥ 0.8 × floor.qps,
 * naiveHit.p50MsSerial ≥ 1.4 × hit.p50MsSerial. Last stdout line is JSON:
 * `{ "embedded": { "floor": {...}, "hit": {...}, "naiveHit": {...}, "miss": {...} }, "redis": { ...same } }`,
 * each `{ p50Ms, p95Ms, p99Ms, qps, p50MsSerial }`.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { TypedSearchAttributes } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { createWorker } from '../workers/runtime.js';
import { DEFAULT_TENANT, type AnswerQueryInput, type AnswerQueryResult } from '../contracts/query.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';
import { workflowBundle } from '../test/support/ragline.js';
import { TestRedis } from '../test/support/redis.js';
import { flag, measureInterleaved, startBenchStack, type BenchStack, type LatencyFigures } from './support.js';
import {
  answerQueryWorkflow,
  floorWorkflow,
  ingestDocumentsWorkflow,
  type naiveHitWorkflow,
} from './workflows/index.js';

type Variant = 'floor' | 'hit' | 'naiveHit' | 'miss';
type BackendFigures = Record<Variant, LatencyFigures>;

const SAMPLE_DOCS = fileURLToPath(new URL('../sample-corpus/docs', import.meta.url));
const GROUND_TRUTH = fileURLToPath(new URL('../sample-corpus/ground-truth.jsonl', import.meta.url));
const HIT_QUESTION = 'How do I reset my password?';
const NAIVE_TASK_QUEUE = 'ragline-bench-naive';

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const serial = Number(flag(args, 'serial') ?? 200);
  const total = Number(flag(args, 'total') ?? 2000);
  const concurrency = Number(flag(args, 'concurrency') ?? 16);
  const options = { serial, total, concurrency };

  const questions = (await fs.readFile(GROUND_TRUTH, 'utf8'))
    .split('\n')
    .filter((line) => line.trim())
    .map((line) => (JSON.parse(line) as { query: string }).query);
  if (questions.length === 0) throw new Error(`no questions in ${GROUND_TRUTH}`);
  // The bench workflows' bundle (bench/workflows/), made once for the process: the naiveHit worker runs it, and so
  // does the ragline worker of each stack (bench/support.ts).
  const benchBundle = await workflowBundle();

  const results = {} as Record<'embedded' | 'redis', BackendFigures>;
  const ratioLines: string[] = [];
  for (const backend of ['embedded', 'redis'] as const) {
    const redis = backend === 'redis' ? await TestRedis.start() : undefined;
    try {
      const stack = await startBenchStack({ tuned: true, config: redis ? { REDIS_URL: redis.url } : {} });
      try {
        results[backend] = await measureBackend(stack, backend, benchBundle, questions, options);
      } finally {
        await stack.stop();
      }
    } finally {
      await redis?.stop();
    }
    ratioLines.push(ratios(backend, results[backend]));
  }
  for (const line of ratioLines) console.log(line);
  console.log(JSON.stringify(results));
}

async function measureBackend(
  stack: BenchStack,
  backend: string,
  benchBundle: { code: string },
  questions: string[],
  options: { serial: number; total: number; concurrency: number },
): Promise<BackendFigures> {
  const { client, taskQueue } = stack;
  // Started as RaglineClient.ask starts them, so the hit path carries what production's does.
  const startOptions = (prefix: string) => ({
    workflowId: `${prefix}-${randomUUID()}`,
    typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: DEFAULT_TENANT }]),
  });
  const ask = (input: AnswerQueryInput): Promise<AnswerQueryResult> =>
    client.workflow.execute(answerQueryWorkflow, { taskQueue, args: [input], ...startOptions('query-bench') });

  const ingested = await client.workflow.execute(ingestDocumentsWorkflow, {
    taskQueue,
    args: [{ paths: [SAMPLE_DOCS] }],
    ...startOptions('ingest-bench'),
  });
  if (ingested.added === 0) throw new Error(`ingesting ${SAMPLE_DOCS} added no document (${JSON.stringify(ingested)})`);

  const filled = await ask({ query: HIT_QUESTION });
  if (filled.degraded)
    throw new Error(`the query that fills the cache degraded: ${filled.fallbackReason} ${filled.fallbackDetail}`);
  const checked = await ask({ query: HIT_QUESTION });
  if (checked.cache.result !== 'hit') {
    throw new Error(
      `${backend}: the second identical query did not hit the result cache (${JSON.stringify(checked.cache)})`,
    );
  }

  const question = (i: number) =>
    questions[((i % questions.length) + questions.length) % questions.length] ?? HIT_QUESTION;

  // A second worker on its own task queue over the same runtime (same cache and store) runs naiveHitWorkflow, as it
  // did when the ragline worker's bundle had no bench workflows, so the figures stay comparable with earlier runs.
  const connection = await NativeConnection.connect({ address: stack.server.address });
  try {
    const naiveWorker = await createWorker({
      connection,
      namespace: 'default',
      taskQueue: NAIVE_TASK_QUEUE,
      runtime: stack.runtime,
      workflowBundle: benchBundle,
    });
    const figures = await naiveWorker.runUntil(
      measureInterleaved<Variant>(
        {
          floor: () => client.workflow.execute(floorWorkflow, { taskQueue, workflowId: `floor-${randomUUID()}` }),
          hit: async () => {
            const result = await ask({ query: HIT_QUESTION });
            if (result.cache.result !== 'hit') {
              throw new Error(`${backend}: a hit query missed the result cache (${JSON.stringify(result.cache)})`);
            }
          },
          naiveHit: () =>
            client.workflow.execute<typeof naiveHitWorkflow>('naiveHitWorkflow', {
              taskQueue: NAIVE_TASK_QUEUE,
              args: [{ query: HIT_QUESTION }],
              ...startOptions('query-bench-naive'),
            }),
          miss: async (i) => {
            const result = await ask({ query: question(i), options: { bypassCache: true } });
            if (result.cache.result !== 'bypass' || result.degraded) {
              throw new Error(
                `${backend}: a miss query was not a full, undegraded pass (${JSON.stringify(result.cache)}, degraded=${result.degraded})`,
              );
            }
          },
        },
        options,
      ),
    );
    for (const variant of ['floor', 'hit', 'naiveHit', 'miss'] as const) {
      console.log(`${backend.padEnd(8)} ${variant.padEnd(8)} ${JSON.stringify(figures[variant])}`);
    }
    return figures;
  } finally {
    await connection.close();
  }
}

function ratios(backend: string, f: BackendFigures): string {
  const show = (ratio: number, ok: boolean, goal: string) =>
    `${(Math.round(ratio * 100) / 100).toFixed(2)} (goal ${goal}, ${ok ? 'met' : 'NOT met'})`;
  const hitSerial = f.hit.p50MsSerial / f.floor.p50MsSerial;
  const hitQps = f.hit.qps / f.floor.qps;
  const naive = f.naiveHit.p50MsSerial / f.hit.p50MsSerial;
  return (
    `ratios ${backend}: hit/floor p50MsSerial ${show(hitSerial, hitSerial <= 1.2, '≤ 1.2')}; ` +
    `hit/floor qps ${show(hitQps, hitQps >= 0.8, '≥ 0.8')}; ` +
    `naiveHit/hit p50MsSerial ${show(naive, naive >= 1.4, '≥ 1.4')}`
  );
}
