import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerQueryInput, AnswerQueryResult } from '../../contracts/query.js';
import type { DeleteDocumentsResult, IngestDocumentsResult } from '../../contracts/ingest.js';
import { childEnv } from '../support/cli.js';
import { TestQdrant } from '../support/qdrant.js';
import { tempDir } from '../support/ragline.js';
import { freeMetricsPorts, TestRedis } from '../support/redis.js';
import { startTestTemporal } from '../support/temporal.js';
import { waitUntil } from '../support/wait.js';

/**
 * The scale-out path as an operator runs it: two `ragline worker` processes on one task queue of one Temporal,
 * sharing one Qdrant collection and one Redis. Which worker ran a step is read from the workflow history (the
 * identity on its completed workflow task or started activity is `<pid>@<host>`), never assumed.
 */

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');
const TENANT = 'scale';

interface WorkerChild {
  child: ChildProcess;
  env: Record<string, string>;
  output: () => string;
  exited: Promise<void>;
}

function spawnRagline(args: string[], env: Record<string, string>): WorkerChild {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, env, output: () => output, exited };
}

async function waitForOutput(worker: WorkerChild, text: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!worker.output().includes(text)) {
    if (worker.child.exitCode !== null) throw new Error(`worker exited before "${text}":\n${worker.output()}`);
    if (Date.now() > deadline) throw new Error(`no "${text}" from the worker:\n${worker.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('two workers sharing Qdrant and Redis', () => {
  let temporal: TestWorkflowEnvironment;
  let redis: TestRedis;
  let qdrant: TestQdrant;
  let corpusDir: string;
  const dataDirs: string[] = [];
  const workers: WorkerChild[] = [];
  const taskQueue = `ragline-scale-${randomUUID()}`;

  /** The worker whose pid is in this identity. */
  const workerOf = (identity: string | null | undefined) =>
    workers.findIndex((worker) => identity?.startsWith(`${worker.child.pid}@`));

  /** Index of the worker that completed a workflow's first workflow task: the one that ran its local steps. */
  const answeredBy = async (workflowId: string): Promise<number> => {
    const history = await temporal.client.workflow.getHandle(workflowId).fetchHistory();
    const completed = history.events?.find((event) => event.workflowTaskCompletedEventAttributes);
    return workerOf(completed?.workflowTaskCompletedEventAttributes?.identity);
  };

  /** Index of the worker that ran each of a workflow's activities, by activity type. */
  const activitiesRanOn = async (workflowId: string): Promise<Array<{ activity: string; worker: number }>> => {
    const events = (await temporal.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
    const types = new Map(
      events.flatMap((event) =>
        event.activityTaskScheduledEventAttributes
          ? [[String(event.eventId), event.activityTaskScheduledEventAttributes.activityType?.name ?? '']]
          : [],
      ),
    );
    return events.flatMap((event) => {
      const started = event.activityTaskStartedEventAttributes;
      return started
        ? [{ activity: types.get(String(started.scheduledEventId)) ?? '', worker: workerOf(started.identity) }]
        : [];
    });
  };

  const ask = async (query: string, options: AnswerQueryInput['options'] = {}) => {
    const workflowId = `scale-query-${randomUUID()}`;
    const result = (await temporal.client.workflow.execute('answerQueryWorkflow', {
      taskQueue,
      workflowId,
      args: [{ query, tenant: TENANT, options } satisfies AnswerQueryInput],
    })) as AnswerQueryResult;
    return { workflowId, result };
  };

  const ingest = async (paths: string[]) => {
    const workflowId = `scale-ingest-${randomUUID()}`;
    const result = (await temporal.client.workflow.execute('ingestDocumentsWorkflow', {
      taskQueue,
      workflowId,
      args: [{ paths, tenant: TENANT }],
    })) as IngestDocumentsResult;
    return { workflowId, result };
  };

  const readyz = async (worker: WorkerChild) => {
    const response = await fetch(`http://127.0.0.1:${worker.env.RAGLINE_METRICS_PORT}/readyz`);
    return {
      status: response.status,
      body: (await response.json()) as { ok: boolean; checks: Record<string, { ok: boolean; error?: string }> },
    };
  };

  /**
   * Qdrant up and both workers ready on it. The first test brings it up after asserting the outage; a test run
   * alone (`-t`) brings it up here. Memoised, like the corpus below, so the file does each once.
   */
  let launched: Promise<void> | undefined;
  const qdrantUp = () =>
    (launched ??= (async () => {
      await qdrant.launch();
      for (const worker of workers) {
        await waitUntil(
          `worker ${worker.child.pid}'s /readyz to pass once Qdrant is up`,
          () => readyz(worker),
          (ready) => ready.status === 200,
        );
      }
    })());

  /** The corpus, ingested through both workers at once (folders `one` and `two`): corpus version 2. */
  type Ingested = Awaited<ReturnType<typeof ingest>>;
  let ingestion: Promise<[Ingested, Ingested]> | undefined;
  const corpus = () =>
    (ingestion ??= qdrantUp().then(() =>
      Promise.all([ingest([path.join(corpusDir, 'one')]), ingest([path.join(corpusDir, 'two')])]),
    ));

  beforeAll(async () => {
    [temporal, redis, qdrant] = await Promise.all([startTestTemporal(), TestRedis.start(), TestQdrant.create()]);
    corpusDir = await tempDir('ragline-scale-corpus-');
    await fs.mkdir(path.join(corpusDir, 'one'));
    await fs.mkdir(path.join(corpusDir, 'two'));
    await fs.writeFile(
      path.join(corpusDir, 'one', 'zebra-aurora.md'),
      '# Aurora zebras\n\nAurora zebras grow violet stripes each winter on the northern plateau of Kelvara.\n',
    );
    await fs.writeFile(
      path.join(corpusDir, 'one', 'copper-kettles.md'),
      '# Copper kettles\n\nCopper kettles from Brindleford are hammered by hand and tinned inside.\n',
    );
    await fs.writeFile(
      path.join(corpusDir, 'two', 'moss-lanterns.md'),
      '# Moss lanterns\n\nMoss lanterns glow green because of a fungus that feeds on damp oak bark.\n',
    );
    await fs.writeFile(
      path.join(corpusDir, 'two', 'zebra-census.md'),
      '# Zebra census\n\nThe plateau census counts zebras of every kind, aurora zebras among them, each spring.\n',
    );
    const metricsPorts = await freeMetricsPorts(2);
    const collection = `ragline_scale_${randomUUID().slice(0, 8)}`;
    for (const port of metricsPorts) {
      const dataDir = await tempDir('ragline-scale-');
      dataDirs.push(dataDir);
      workers.push(
        spawnRagline(['worker'], {
          TEMPORAL_ADDRESS: temporal.address,
          TEMPORAL_NAMESPACE: temporal.namespace ?? 'default',
          RAGLINE_TASK_QUEUE: taskQueue,
          RAGLINE_DATA_DIR: dataDir,
          RAGLINE_METRICS_PORT: String(port),
          REDIS_URL: redis.url,
          // Qdrant is not running yet: the first test is a worker started before its store.
          QDRANT_URL: qdrant.url,
          QDRANT_COLLECTION: collection,
          // The store breaker opens during the outage the first test makes; it retries after 100 ms, not 30 s.
          RAGLINE_BREAKER_OPEN_MS: '100',
        }),
      );
    }
    await Promise.all(workers.map((worker) => waitForOutput(worker, `worker polling ${taskQueue}`)));
  });

  afterAll(async () => {
    for (const worker of workers) {
      if (worker.child.exitCode === null && worker.child.signalCode === null) {
        worker.child.kill('SIGTERM');
        await worker.exited;
      }
    }
    await Promise.all([temporal?.teardown(), redis?.stop(), qdrant?.stop()]);
    for (const dir of [...dataDirs, corpusDir]) await fs.rm(dir, { recursive: true, force: true });
  });

  it('says Qdrant is unreachable naming QDRANT_URL, answers from the fallback flagged, and recovers', async () => {
    const [first] = workers;
    const ready = await readyz(first!);
    expect(ready.status).toBe(503);
    expect(ready.body.checks.store?.ok).toBe(false);
    expect(ready.body.checks.store?.error).toContain(`Qdrant at ${qdrant.url} (QDRANT_URL) unreachable`);
    expect(ready.body.checks.cache?.ok).toBe(true);

    const status = spawnRagline(['status', '--json', '--tenant', TENANT], first!.env);
    await status.exited;
    expect(status.child.exitCode).toBe(1);
    const report = JSON.parse(status.output().slice(status.output().indexOf('{'))) as {
      ok: boolean;
      checks: Record<string, { ok: boolean; error?: string }>;
    };
    expect(report.ok).toBe(false);
    expect(report.checks.store?.error).toContain('(QDRANT_URL) unreachable');

    const { result } = await ask('Where do aurora zebras live?');
    expect(result.degraded).toBe(true);
    expect(result.fallbackReason).toBe('retrieval-unavailable');

    await qdrantUp();
    for (let attempt = 0; ; attempt++) {
      const again = await readyz(first!);
      if (again.status === 200) break;
      expect(attempt).toBeLessThan(100);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Queries answer from the store again once its breaker has let a trial call through.
    for (let attempt = 0; ; attempt++) {
      expect(attempt).toBeLessThan(20);
      const { result: after } = await ask('Where do aurora zebras live?', { bypassCache: true });
      if (after.fallbackReason === undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  it('ingests through both at once without losing a corpus-version step, and answers from the other worker', async () => {
    const [one, two] = await corpus();
    expect(one.result).toMatchObject({ added: 2, rejected: 0 });
    expect(two.result).toMatchObject({ added: 2, rejected: 0 });
    // One batch each, one version step each, whichever workers ran them and however they overlapped.
    expect(Math.max(one.result.corpusVersion, two.result.corpusVersion)).toBe(2);

    const batches = (await activitiesRanOn(one.workflowId)).filter((run) => run.activity === 'ingestManifestBatch');
    expect(batches).toHaveLength(1);
    const ingester = batches[0]!.worker;
    expect(ingester).toBeGreaterThanOrEqual(0);
    // Queries go to whichever worker polls first; ask until the one that did not ingest has answered.
    for (let attempt = 0; ; attempt++) {
      expect(attempt).toBeLessThan(40);
      const { workflowId, result } = await ask('Where do aurora zebras live?', { bypassCache: true });
      expect(result.degraded).toBe(false);
      expect(result.sources[0]?.docId).toBe('zebra-aurora');
      if ((await answeredBy(workflowId)) === 1 - ingester) break;
    }
  });

  it('a document deleted through one is gone for both, and so are the cached answers that cited it', async () => {
    await corpus();
    const question = 'What colour are the stripes of aurora zebras?';
    const first = await ask(question);
    expect(first.result.sources.map((source) => source.docId)).toContain('zebra-aurora');
    // Both workers serve the cached answer before the delete, so each has had it in hand.
    const servedHit = new Set<number>();
    for (let attempt = 0; servedHit.size < 2; attempt++) {
      expect(attempt).toBeLessThan(40);
      const { workflowId, result } = await ask(question);
      expect(result.cache.result).toBe('hit');
      expect(result.sources.map((source) => source.docId)).toContain('zebra-aurora');
      servedHit.add(await answeredBy(workflowId));
    }

    const deleteId = `scale-delete-${randomUUID()}`;
    const deleted = (await temporal.client.workflow.execute('deleteDocumentsWorkflow', {
      taskQueue,
      workflowId: deleteId,
      args: [{ tenant: TENANT, docIds: ['zebra-aurora'] }],
    })) as DeleteDocumentsResult;
    expect(deleted).toMatchObject({ deleted: ['zebra-aurora'], missing: [], corpusVersion: 3 });
    expect((await activitiesRanOn(deleteId)).map((run) => run.activity)).toEqual(['deleteDocuments']);

    const servedAfter = new Set<number>();
    for (let attempt = 0; servedAfter.size < 2; attempt++) {
      expect(attempt).toBeLessThan(40);
      const { workflowId, result } = await ask(question);
      // The first answer after the delete is computed afresh, not the cached one that cited the deleted document.
      if (attempt === 0) expect(result.cache.result).toBe('miss');
      expect(result.corpusVersion).toBe(3);
      expect(result.sources.map((source) => source.docId)).not.toContain('zebra-aurora');
      expect(result.sources.map((source) => source.docId)).toContain('zebra-census');
      servedAfter.add(await answeredBy(workflowId));
    }
  });

  it('loses no query when one worker is killed mid-load', async () => {
    await corpus();
    const [doomed] = workers;
    const questions = ['moss lanterns glow', 'copper kettles hammered', 'zebra census spring', 'fungus oak bark'];
    const load: Array<{ workflowId: string; result: Promise<AnswerQueryResult> }> = [];
    const start = async () => {
      const n = load.length;
      const workflowId = `scale-load-${n}-${randomUUID()}`;
      const handle = await temporal.client.workflow.start('answerQueryWorkflow', {
        taskQueue,
        workflowId,
        args: [{ query: `${questions[n % questions.length]} (${n})`, tenant: TENANT, options: { bypassCache: true } }],
      });
      const result = handle.result() as Promise<AnswerQueryResult>;
      // Collected at the end; a failure must not surface as an unhandled rejection before then.
      result.catch(() => undefined);
      load.push({ workflowId, result });
      return workflowId;
    };
    /** Waits until the workflow's first task is taken, and says whether the doomed worker took it. */
    const takenByDoomed = async (workflowId: string) => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const events = (await temporal.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [];
        const taken = events.find((event) => event.workflowTaskStartedEventAttributes);
        if (taken) return workerOf(taken.workflowTaskStartedEventAttributes?.identity) === 0;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error(`${workflowId}: no worker took its first task`);
    };

    // Frozen, the first worker still holds its long polls, so the server keeps handing it tasks it cannot finish:
    // load continues on both until it certainly holds a query, and only then is it killed.
    doomed!.child.kill('SIGSTOP');
    let held: string | undefined;
    while (held === undefined) {
      expect(load.length).toBeLessThan(40);
      const workflowId = await start();
      if (await takenByDoomed(workflowId)) held = workflowId;
    }
    doomed!.child.kill('SIGKILL');
    await doomed!.exited;
    for (let n = 0; n < 4; n++) await start();

    const settled = await Promise.allSettled(load.map(({ result }) => result));
    expect(settled.filter((outcome) => outcome.status === 'rejected')).toEqual([]);
    for (const outcome of settled) {
      const result = (outcome as PromiseFulfilledResult<AnswerQueryResult>).value;
      // Answered, not lost: a step the killed worker held may have run out of time and fallen back, flagged.
      expect(result.answer.length).toBeGreaterThan(0);
      expect(result.degraded).toBe(result.fallbackReason !== undefined);
    }
    // The query the killed worker held timed out there and was finished by the survivor.
    const events = (await temporal.client.workflow.getHandle(held).fetchHistory()).events ?? [];
    expect(events.some((event) => event.workflowTaskTimedOutEventAttributes)).toBe(true);
    expect(await answeredBy(held)).toBe(1);
  });
});
