/**
 * `npm run bench -- load [--users 100] [--queries 100] [--concurrency 64] [--floor 2000] [--redis]`: `ragline load`'s
 * simulation (Zipf mix of sample questions, paraphrases and new questions; every query really runs) against a
 * ragline worker on the tuned dev server, with the floor workflow (one no-op local activity) measured at the same
 * concurrency on the same stack just before and just after it. Throughput is reported as a ratio to the mean of the
 * two floor runs, so drift on a shared machine shows as the gap between them rather than in the ratio. Prints
 * figures and the load average; asserts nothing.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { DEFAULT_LOAD, formatReport, readSampleQuestions, runLoad } from '../cli/load.js';
import { RaglineClient } from '../client/ragline-client.js';
import { floorWorkflow } from './workflows/index.js';
import { TestRedis } from '../test/support/redis.js';
import { flag, measure, startBenchStack } from './support.js';

const SAMPLE_DOCS = fileURLToPath(new URL('../sample-corpus/docs', import.meta.url));
const GROUND_TRUTH = fileURLToPath(new URL('../sample-corpus/ground-truth.jsonl', import.meta.url));

const loadAverage = () => os.loadavg().map((n) => Math.round(n * 100) / 100);

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const users = Number(flag(args, 'users') ?? 100);
  const queriesPerUser = Number(flag(args, 'queries') ?? 100);
  const concurrency = Number(flag(args, 'concurrency') ?? 64);
  const floorTotal = Number(flag(args, 'floor') ?? 2000);
  const redis = args.includes('--redis') ? await TestRedis.start() : undefined;
  const stack = await startBenchStack({ tuned: true, config: redis ? { REDIS_URL: redis.url } : {} });
  try {
    const client = new RaglineClient(stack.client, stack.taskQueue, {
      maxQueryChars: stack.runtime.config.RAGLINE_MAX_QUERY_CHARS,
      ingestBatch: stack.runtime.config.RAGLINE_INGEST_BATCH,
      deadlineMs: stack.runtime.config.RAGLINE_QUERY_DEADLINE_MS,
    });
    await client.ingest([SAMPLE_DOCS]);
    const floor = () =>
      measure(
        () =>
          stack.client.workflow.execute(floorWorkflow, {
            taskQueue: stack.taskQueue,
            workflowId: `floor-${randomUUID()}`,
          }),
        { serial: 0, total: floorTotal, concurrency },
      );
    const loadBefore = loadAverage();
    const floorBefore = await floor();
    const report = await runLoad(client, readSampleQuestions(GROUND_TRUTH), {
      ...DEFAULT_LOAD,
      users,
      queriesPerUser,
      concurrency,
    });
    const floorAfter = await floor();
    const floorQps = (floorBefore.qps + floorAfter.qps) / 2;
    const figures = {
      backend: redis ? 'redis' : 'embedded',
      queries: report.sent,
      concurrency,
      answered: report.answered,
      errors: report.errors,
      lost: report.lost,
      qps: report.throughputQps,
      floorQpsBefore: floorBefore.qps,
      floorQpsAfter: floorAfter.qps,
      ratioToFloor: Math.round((report.throughputQps / floorQps) * 1000) / 1000,
      p50Ms: report.latencyMs.all.p50,
      p99Ms: report.latencyMs.all.p99,
      floorP99Ms: Math.max(floorBefore.p99Ms, floorAfter.p99Ms),
      hitRatio: report.hitRatio,
      degradedByReason: report.degradedByReason,
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAverage(),
    };
    console.log(formatReport(report));
    console.log(
      `${report.sent} queries at concurrency ${concurrency}: ${report.answered} answered, ${report.errors} errors, ` +
        `${report.lost} lost; ${figures.qps} q/s vs floor ${floorBefore.qps} / ${floorAfter.qps} q/s (before / after) ` +
        `→ ${figures.ratioToFloor}× floor; load average ${loadBefore.join(' ')} → ${figures.loadAverageAfter.join(' ')}`,
    );
    console.log(JSON.stringify(figures));
  } finally {
    await stack.stop();
    await redis?.stop();
  }
}
