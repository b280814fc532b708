import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { describe, expect, it } from 'vitest';
import { createReindexActivities } from '../../activities/reindex.js';
import type { ChunkStore } from '../../lib/domain.js';
import { ErrorType } from '../../lib/errors.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { QdrantStore } from '../../lib/retrieval/qdrant-store.js';
import { isReembeddable } from '../../lib/retrieval/reembedding.js';
import { reindexEtaSeconds, reindexInputProblem, type ReindexProgress } from '../../contracts/reindex.js';
import { tempDir } from '../support/ragline.js';

const call = <I, O>(env: MockActivityEnvironment, activity: (input: I) => Promise<O>, input: I): Promise<O> =>
  env.run(activity as (input: I) => Promise<O>, input) as Promise<O>;

const failureOf = async (promise: Promise<unknown>): Promise<ApplicationFailure> => {
  const error = await promise.catch((caught: unknown) => caught);
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
};

describe('reindex activities', () => {
  it('refuse a store that cannot re-embed with a non-retryable configuration error naming it', async () => {
    // Both stores ragline ships re-embed (their constructors connect to nothing); a store offering the ChunkStore
    // methods only is refused.
    expect(isReembeddable(new QdrantStore({ url: 'http://127.0.0.1:9', collection: 'unused' }))).toBe(true);
    const lexicalOnly: ChunkStore & { kind: string } = {
      kind: 'lexical-only',
      upsertDocuments: async () => [],
      deleteDocuments: async () => ({ deleted: [], missing: [] }),
      search: async () => ({ hits: [] }),
      getChunks: async () => [],
      documentHash: async () => undefined,
      stats: async () => ({ documents: 0, chunks: 0, corpusVersion: 0 }),
      corpusVersion: async () => 0,
      health: async () => ({ ok: true, latencyMs: 0 }),
      close: async () => undefined,
    };
    expect(isReembeddable(lexicalOnly)).toBe(false);
    const activities = createReindexActivities({ store: lexicalOnly, kind: lexicalOnly.kind });
    const env = new MockActivityEnvironment();
    for (const run of [
      () => call(env, activities.beginReembedding, { tenant: 'acme' }),
      () => call(env, activities.reembedBatch, { tenant: 'acme', maxChunks: 10 }),
      () => call(env, activities.switchEmbeddings, { tenant: 'acme' }),
    ]) {
      const failure = await failureOf(run());
      expect(failure.type).toBe(ErrorType.Configuration);
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(/lexical-only store cannot re-embed/);
    }
  });

  it('refuse a bad tenant, and a store with no embedder configured, without retrying', async () => {
    const store = await EmbeddedStore.open(await tempDir());
    try {
      const activities = createReindexActivities({ store, kind: store.kind });
      const env = new MockActivityEnvironment();
      const bad = await failureOf(call(env, activities.reembedBatch, { tenant: '../etc', maxChunks: 10 }));
      expect(bad).toMatchObject({ type: ErrorType.InvalidInput, nonRetryable: true });
      const noEmbedder = await failureOf(call(env, activities.beginReembedding, { tenant: 'acme' }));
      expect(noEmbedder).toMatchObject({ type: ErrorType.Configuration, nonRetryable: true });
      expect(noEmbedder.message).toMatch(/OPENAI_EMBEDDING_MODEL/);
    } finally {
      await store.close();
    }
  });
});

describe('reindex input and ETA', () => {
  it('checks tenant, batch size and heartbeat timeout', () => {
    expect(reindexInputProblem({}, 'acme')).toBeUndefined();
    expect(reindexInputProblem({}, 'a b')).toMatch(/tenant/);
    expect(reindexInputProblem({ batchChunks: 0 }, 'acme')).toMatch(/batchChunks/);
    expect(reindexInputProblem({ batchChunks: 1.5 }, 'acme')).toMatch(/batchChunks/);
    expect(reindexInputProblem({ batchChunks: 20_000 }, 'acme')).toMatch(/batchChunks/);
    expect(reindexInputProblem({ heartbeatTimeoutSeconds: 0 }, 'acme')).toMatch(/heartbeat/);
  });

  it('estimates the time left from the rate since the start', () => {
    const progress: ReindexProgress = {
      tenant: 't',
      phase: 'embedding',
      chunksDone: 300,
      chunksTotal: 1000,
      chunksEmbedded: 200,
      batches: 2,
      startedAt: '2026-01-01T00:00:00.000Z',
      updatedAt: '2026-01-01T00:00:10.000Z',
      runs: 1,
    };
    // 200 chunks in 10 s: 700 left take 35 s (100 were staged by ingestion, not counted in the rate).
    expect(reindexEtaSeconds(progress, Date.parse(progress.updatedAt))).toBe(35);
    expect(reindexEtaSeconds({ ...progress, chunksEmbedded: 0 }, Date.parse(progress.updatedAt))).toBeUndefined();
  });
});
