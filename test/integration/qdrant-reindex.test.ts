import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isReembeddable } from '../../lib/retrieval/reembedding.js';
import { startReindex } from '../../workers/reindex-startup.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { getReindexProgressQuery } from '../../contracts/reindex.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { TestQdrant } from '../support/qdrant.js';
import { SAMPLE_CORPUS, startRagline, tempDir } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';

/**
 * The background reindex workflow on Qdrant, on a real dev server and a real Qdrant: a corpus embedded with one
 * model (16 dimensions) is re-embedded with another (8) while queries answer lexically (flagged), then answers
 * hybrid with the new vectors; the tenant left on the old model is untouched and still listed as needing it.
 */
describe('re-embedding a Qdrant-backed tenant in the background', () => {
  let env: TestWorkflowEnvironment;
  let fake: FakeOpenAI;
  let qdrant: TestQdrant;
  const dirs: string[] = [];

  const embedderConfig = (model: string, dims: number) => ({
    OPENAI_EMBEDDING_MODEL: model,
    OPENAI_EMBEDDING_DIMENSIONS: String(dims),
    RAGLINE_EMBEDDING_URL: fake.baseURL,
    RAGLINE_SEMANTIC_CACHE: 'false',
  });

  beforeAll(async () => {
    [env, fake, qdrant] = await Promise.all([startTestTemporal(), startFakeOpenAI(), TestQdrant.start()]);
  });
  afterAll(async () => {
    await fake?.close();
    await qdrant?.stop();
    await env?.teardown();
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it('answers flagged while it runs, then with the new model, leaving the other tenant as it was', async () => {
    const collection = `ragline_reindex_${randomUUID().slice(0, 8)}`;
    const qdrantConfig = async () => {
      const dataDir = await tempDir('ragline-qdrant-reindex-');
      dirs.push(dataDir);
      return { RAGLINE_DATA_DIR: dataDir, QDRANT_URL: qdrant.url, QDRANT_COLLECTION: collection };
    };
    const other = await tempDir('ragline-qdrant-other-');
    dirs.push(other);
    await fs.writeFile(path.join(other, 'owls.md'), '# Owls\n\nBarn owls hunt at night over the barley fields.\n');
    const first = await startRagline({ env, config: { ...(await qdrantConfig()), ...embedderConfig('model-a', 16) } });
    try {
      expect((await first.ingest([SAMPLE_CORPUS])).added).toBeGreaterThan(0);
      expect((await first.ingest([other], 'other')).added).toBe(1);
    } finally {
      await first.stop();
    }

    fake.reset();
    const ragline = await startRagline({ env, config: { ...(await qdrantConfig()), ...embedderConfig('model-b', 8) } });
    const ask = (query: string) =>
      env.client.workflow.execute(answerQueryWorkflow, {
        taskQueue: ragline.taskQueue,
        workflowId: `qdrant-reindex-${randomUUID()}`,
        args: [{ query, options: { bypassCache: true } }],
      });
    try {
      const store = ragline.runtime.deps.reindex!.store;
      if (!isReembeddable(store)) throw new Error('the Qdrant store re-embeds');
      const before = await store.embeddingStatus('default');
      expect(before).toMatchObject({ needed: true, live: 'model-a|16', configured: 'model-b|8' });
      expect(await store.tenantsNeedingReembedding()).toEqual(['default', 'other']);
      expect((await ask('How do I reset my password?')).retrievalDegraded).toBe('embedding-mismatch');

      const gate = fake.holdEmbeddings();
      const handle = await startReindex(env.client, { taskQueue: ragline.taskQueue, batchChunks: 20 });
      await gate.reached;
      expect(await handle.query(getReindexProgressQuery)).toMatchObject({
        phase: 'embedding',
        chunksDone: 0,
        chunksTotal: before.chunks,
        from: 'model-a|16',
        to: 'model-b|8',
      });
      const during = await ask('What are the API rate limits?');
      expect(during.retrievalDegraded).toBe('embedding-mismatch');
      expect(during.sources[0]?.docId).toBe('api-rate-limits');
      gate.release();

      const result = await handle.result();
      expect(result).toMatchObject({ switched: true, phase: 'done', to: 'model-b|8', chunksDone: before.chunks });
      // Every chunk embedded once, and only the re-embedded tenant's.
      expect(fake.embeddedTexts).toHaveLength(before.chunks);
      expect(fake.embeddedTexts.some((text) => text.includes('Barn owls'))).toBe(false);

      const after = await ask('How do I reset my password?');
      expect(after.retrievalDegraded).toBeUndefined();
      expect(after.sources.map((source) => source.docId)).toContain('password-reset');
      expect(await store.embeddingStatus('default')).toMatchObject({ needed: false, live: 'model-b|8' });
      expect(await store.tenantsNeedingReembedding()).toEqual(['other']);
      expect(await store.embeddingStatus('other')).toMatchObject({ needed: true, live: 'model-a|16', chunks: 1 });
      const owls = await ragline.runtime.deps.store.search('other', { query: 'barn owls', topK: 1 });
      expect(owls).toMatchObject({ degradedReason: 'embedding-mismatch', hits: [{ docId: 'owls' }] });
    } finally {
      await ragline.stop();
    }
  }, 300_000);
});
