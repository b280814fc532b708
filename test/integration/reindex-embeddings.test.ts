import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReindex } from '../../workers/reindex-startup.js';
import { ErrorType, InvalidInputError } from '../../lib/errors.js';
import { isReembeddable } from '../../lib/retrieval/reembedding.js';
import { answerQueryWorkflow, reindexEmbeddingsWorkflow } from '../../workflows/index.js';
import { getReindexProgressQuery, reindexWorkflowId, type ReindexProgress } from '../../contracts/reindex.js';
import { runCli } from '../support/cli.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';
import { freeMetricsPorts } from '../support/redis.js';
import { startTestTemporal } from '../support/temporal.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');
const DIMS = 16;

/**
 * Turning embeddings on over a corpus indexed without them, on a real dev server: the reindex runs in the
 * background while queries answer lexically (flagged), switches in one step, keeps what was ingested meanwhile, and
 * survives its worker being SIGKILLed mid-run without embedding finished batches again. Embeddings come from the
 * fake OpenAI server (deterministic hashed vectors, requests recorded).
 */
describe('re-embedding an indexed corpus in the background', () => {
  let env: TestWorkflowEnvironment;
  let fake: FakeOpenAI;
  const dirs: string[] = [];

  const embedderConfig = (model: string) => ({
    OPENAI_EMBEDDING_MODEL: model,
    OPENAI_EMBEDDING_DIMENSIONS: String(DIMS),
    RAGLINE_EMBEDDING_URL: fake.baseURL,
    // Every question must reach retrieval, and none may embed a question through the near-duplicate cache.
    RAGLINE_SEMANTIC_CACHE: 'false',
  });

  /** A data dir holding, indexed lexically (no embedder configured), the sample corpus or other documents per tenant. */
  const lexicalCorpus = async (tenants: Record<string, string> = { default: SAMPLE_CORPUS }): Promise<string> => {
    const dataDir = await tempDir('ragline-reindex-');
    dirs.push(dataDir);
    const lexical = await startRagline({ env, config: { RAGLINE_DATA_DIR: dataDir } });
    try {
      for (const [tenant, corpus] of Object.entries(tenants)) {
        const ingested = await lexical.ingest([corpus], tenant);
        expect(ingested.added).toBeGreaterThan(0);
        expect(ingested.rejected).toBe(0);
      }
    } finally {
      await lexical.stop();
    }
    return dataDir;
  };

  const ask = (taskQueue: string, query: string) =>
    env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue,
      workflowId: `reindex-test-${randomUUID()}`,
      args: [{ query, options: { bypassCache: true } }],
    });

  beforeAll(async () => {
    env = await startTestTemporal();
    fake = await startFakeOpenAI();
  });
  afterAll(async () => {
    await fake?.close();
    await env?.teardown();
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  describe('on one worker', () => {
    let ragline: TestRagline;
    beforeAll(async () => {
      // Texts of their own: the sample corpus's embeddings are in the cache once the first test has run.
      const outageDocs = await tempDir('ragline-reindex-outage-');
      dirs.push(outageDocs);
      for (let i = 0; i < 6; i++) {
        await fs.writeFile(
          path.join(outageDocs, `lighthouse-${i}.md`),
          `# Lighthouse ${i}\n\nLighthouse number ${i} stands on a basalt cliff; its lamp turns every ${i + 3} seconds.\n`,
        );
      }
      const dataDir = await lexicalCorpus({ default: SAMPLE_CORPUS, outage: outageDocs });
      fake.reset();
      ragline = await startRagline({
        env,
        // The embedder's breaker, opened by the outage test, lets a probe through after 300 ms, not 30 s.
        config: { RAGLINE_DATA_DIR: dataDir, RAGLINE_BREAKER_OPEN_MS: '300', ...embedderConfig('model-b') },
      });
    });
    afterAll(async () => {
      await ragline?.stop();
    });

    it('answers lexically while it runs, keeps documents ingested meanwhile, then switches to the dense leg', async () => {
      const store = ragline.runtime.deps.reindex!.store;
      if (!isReembeddable(store)) throw new Error('the embedded store re-embeds');
      const before = await store.embeddingStatus('default');
      expect(before).toMatchObject({ needed: true, configured: `model-b|${DIMS}` });
      expect((await ask(ragline.taskQueue, 'How do I reset my password?')).retrievalDegraded).toBe(
        'embedding-mismatch',
      );

      const gate = fake.holdEmbeddings();
      const handle = await startReindex(env.client, { taskQueue: ragline.taskQueue, batchChunks: 20 });
      expect(handle.workflowId).toBe(reindexWorkflowId('default'));
      await gate.reached;
      const held = await handle.query(getReindexProgressQuery);
      expect(held).toMatchObject({ phase: 'embedding', chunksDone: 0, chunksTotal: before.chunks, batches: 0 });
      expect(held.to).toBe(`model-b|${DIMS}`);
      // A second start (another worker coming up, a CLI) joins the running reindex.
      const again = await startReindex(env.client, { taskQueue: ragline.taskQueue, batchChunks: 20 });
      expect(again.firstExecutionRunId).toBe(handle.firstExecutionRunId);
      // Wrong input to the query is refused to its caller; the workflow goes on (checked by its result below).
      await expect(
        env.client.workflow.getHandle(handle.workflowId).query('getReindexProgress', 'surprise'),
      ).rejects.toThrow(/takes no arguments/);
      const during = await ask(ragline.taskQueue, 'What are the API rate limits?');
      expect(during.retrievalDegraded).toBe('embedding-mismatch');
      expect(during.sources[0]?.docId).toBe('api-rate-limits');

      gate.release();
      const seen: ReindexProgress[] = [held];
      while (seen.at(-1)!.chunksDone < 40) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        seen.push(await handle.query(getReindexProgressQuery));
      }
      // Ingested mid-reindex (its batches held meanwhile, so it cannot have finished): in the corpus at once,
      // lexically, its new-model vector staged by the ingestion itself.
      const reindexHeld = fake.holdEmbeddings((texts) => !texts.some((text) => text.includes('Aurora')));
      await reindexHeld.reached;
      const extra = path.join(await tempDir('ragline-reindex-docs-'), 'aurora-zebras.md');
      dirs.push(path.dirname(extra));
      await fs.writeFile(extra, '# Aurora zebras\n\nAurora zebras graze on the northern plateau under green skies.\n');
      expect((await ragline.ingest([extra])).added).toBe(1);
      expect((await ask(ragline.taskQueue, 'Where do aurora zebras graze?')).sources[0]?.docId).toBe('aurora-zebras');
      seen.push(await handle.query(getReindexProgressQuery));
      expect(seen.at(-1)!.phase).toBe('embedding');
      reindexHeld.release();

      const result = await handle.result();
      expect(result).toMatchObject({ switched: true, phase: 'done', to: `model-b|${DIMS}` });
      expect(result.chunksTotal).toBe(before.chunks + 1);
      expect(result.chunksDone).toBe(result.chunksTotal);
      // The progress moved, with an ETA once a batch had completed.
      const done = seen.map((p) => p.chunksDone);
      expect(new Set(done).size).toBeGreaterThan(1);
      expect(seen.some((p) => p.etaSeconds !== undefined)).toBe(true);
      // Every chunk embedded once: the reindex skipped what the ingestion had staged.
      const sent = fake.embeddedTexts.length;
      expect(sent).toBe(result.chunksTotal);
      expect(new Set(fake.embeddedTexts).size).toBe(sent);

      const after = await ask(ragline.taskQueue, 'How do I reset my password?');
      expect(after.retrievalDegraded).toBeUndefined();
      expect(after.sources.map((source) => source.docId)).toContain('password-reset');
      const zebras = await ask(ragline.taskQueue, 'Where do aurora zebras graze?');
      expect(zebras.retrievalDegraded).toBeUndefined();
      expect(zebras.sources[0]?.docId).toBe('aurora-zebras');
      expect(await store.embeddingStatus('default')).toMatchObject({ needed: false, live: `model-b|${DIMS}` });
      // Nothing left to do for it: a worker starting now would not re-embed it again (the other tenant waits its turn).
      expect(await store.tenantsNeedingReembedding()).toEqual(['outage']);
    });

    it('waits out an embedder outage instead of failing, then switches', async () => {
      fake.reset();
      fake.embeddingMode = 'server-error';
      const handle = await startReindex(env.client, {
        taskQueue: ragline.taskQueue,
        tenant: 'outage',
        batchChunks: 2,
      });
      while (fake.embeddingRequests.length < 3) await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await handle.describe()).status.name).toBe('RUNNING');
      expect(await handle.query(getReindexProgressQuery)).toMatchObject({ phase: 'embedding', chunksDone: 0 });
      fake.embeddingMode = 'vectors';
      const result = await handle.result();
      expect(result).toMatchObject({ switched: true, tenant: 'outage', chunksDone: result.chunksTotal });
      expect(
        (await ragline.runtime.deps.store.search('outage', { query: 'basalt cliff lamp', topK: 3 })).degradedReason,
      ).toBeUndefined();
    });

    it('completes as not-needed for a tenant whose vectors already match, and refuses bad input with a typed error', async () => {
      const handle = await startReindex(env.client, { taskQueue: ragline.taskQueue, tenant: 'nothing-here' });
      expect(await handle.result()).toMatchObject({ switched: false, phase: 'not-needed' });

      await expect(
        startReindex(env.client, { taskQueue: ragline.taskQueue, tenant: 'no such/tenant' }),
      ).rejects.toThrow(InvalidInputError);
      await expect(
        startReindex(env.client, { taskQueue: ragline.taskQueue, tenant: 'acme', batchChunks: 0 }),
      ).rejects.toThrow(/batchChunks/);
      // Past the client, the workflow itself refuses: InvalidInput, non-retryable, before any activity.
      const error = await env.client.workflow
        .execute(reindexEmbeddingsWorkflow, {
          taskQueue: ragline.taskQueue,
          workflowId: `reindex-bad-${randomUUID()}`,
          args: [{ tenant: '../etc' }],
        })
        .catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(WorkflowFailedError);
      const cause = (error as WorkflowFailedError).cause;
      expect(cause).toBeInstanceOf(ApplicationFailure);
      expect((cause as ApplicationFailure).type).toBe(ErrorType.InvalidInput);
    });
  });

  describe('across a worker killed mid-reindex', () => {
    const children: ChildProcess[] = [];
    afterAll(async () => {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve));
          child.kill('SIGTERM');
          await exited;
        }
      }
    });

    it('resumes on the next worker from the last staged batch, embedding none of the finished ones again', async () => {
      const dataDir = await lexicalCorpus();
      fake.reset();
      fake.embeddingDelayMs = 150;
      const taskQueue = `ragline-reindex-${randomUUID()}`;
      const [metricsA, metricsB] = await freeMetricsPorts(2);
      const spawnWorker = (metricsPort: number) => {
        const child = spawn(process.execPath, [BIN, 'worker'], {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            LOG_LEVEL: 'silent',
            TEMPORAL_ADDRESS: env.address,
            TEMPORAL_NAMESPACE: env.namespace ?? 'default',
            RAGLINE_TASK_QUEUE: taskQueue,
            RAGLINE_DATA_DIR: dataDir,
            RAGLINE_METRICS_PORT: String(metricsPort),
            RAGLINE_REINDEX_BATCH_CHUNKS: '10',
            RAGLINE_REINDEX_HEARTBEAT_SECONDS: '2',
            ...embedderConfig('model-c'),
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        children.push(child);
        return child;
      };
      const handle = env.client.workflow.getHandle(reindexWorkflowId('default'));
      const progress = async (): Promise<ReindexProgress | undefined> =>
        handle.query(getReindexProgressQuery).catch(() => undefined);

      // Started by the worker itself: no one asks for it.
      const first = spawnWorker(metricsA!);
      const deadline = Date.now() + 120_000;
      let before: ReindexProgress | undefined;
      while (!before || before.batches < 3) {
        if (Date.now() > deadline) throw new Error(`the reindex did not get going: ${JSON.stringify(before)}`);
        if (first.exitCode !== null) throw new Error('the first worker exited');
        await new Promise((resolve) => setTimeout(resolve, 100));
        before = await progress();
      }
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
      const sentBefore = new Set(fake.embeddedTexts);
      const textsBefore = fake.embeddedTexts.length;
      expect(sentBefore.size).toBeGreaterThanOrEqual(30);

      const second = spawnWorker(metricsB!);
      const result = await handle.result();
      expect(second.exitCode).toBeNull();
      expect(result).toMatchObject({ switched: true, phase: 'done', to: `model-c|${DIMS}` });
      const after = fake.embeddedTexts.slice(textsBefore);
      // At most the batch that was in flight when the worker died is embedded again (one request of ≤ 10 chunks).
      const repeated = after.filter((text) => sentBefore.has(text));
      expect(repeated.length).toBeLessThanOrEqual(10);
      expect(sentBefore.size + after.length - repeated.length).toBe(result.chunksTotal);
      expect(result.runs).toBe(1);

      const answer = await ask(taskQueue, 'How do I reset my password?');
      expect(answer.retrievalDegraded).toBeUndefined();
      // Hashed bag-of-words vectors are no model: the right page is among the sources, not necessarily first.
      expect(answer.sources.map((source) => source.docId)).toContain('password-reset');

      // The CLI, as a user runs it against these workers: nothing left to do, bad input refused (exit 2).
      const cliEnv = {
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace ?? 'default',
        RAGLINE_TASK_QUEUE: taskQueue,
      };
      const [again, noKind, badTenant] = await Promise.all([
        runCli(['reindex', '--embeddings', '--json'], cliEnv, { timeoutMs: 120_000 }),
        runCli(['reindex'], cliEnv, { timeoutMs: 120_000 }),
        runCli(['reindex', '--embeddings', '--tenant', 'no such tenant'], cliEnv, { timeoutMs: 120_000 }),
      ]);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout)).toMatchObject({ phase: 'not-needed', switched: false, tenant: 'default' });
      expect(noKind.code).toBe(2);
      expect(noKind.stderr).toMatch(/--embeddings/);
      expect(badTenant.code).toBe(2);
      expect(badTenant.stderr).toMatch(/tenant/);
      // Two worker processes and three CLI runs start from TypeScript sources on shared cores.
    }, 300_000);
  });
});
