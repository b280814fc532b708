import { randomUUID } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorType } from '../../lib/errors.js';
import type { Embedder } from '../../lib/retrieval/embedder.js';
import { createChunkStore } from '../../lib/retrieval/index.js';
import { QdrantLayoutError } from '../../lib/retrieval/qdrant/layout.js';
import { pointId } from '../../lib/retrieval/qdrant/points.js';
import { QdrantStore } from '../../lib/retrieval/qdrant-store.js';
import { testConfig } from '../support/ragline.js';
import { TestQdrant } from '../support/qdrant.js';
import { freePort } from '../support/redis.js';
import { describeStoreContract, makeDoc } from '../support/store-contract.js';

// The suite's own Qdrant server (test/support/qdrant.ts); a missing binary fails here rather than skipping.
let qdrant: TestQdrant;
let client: QdrantClient;

beforeAll(async () => {
  qdrant = await TestQdrant.start();
  client = new QdrantClient({ url: qdrant.url, checkCompatibility: false });
});

afterAll(async () => {
  await qdrant?.stop();
});

const newCollection = () => `ragline_test_${randomUUID().slice(0, 8)}`;

describeStoreContract('qdrant', async () => {
  // A collection per test keeps runs independent; dropped afterwards.
  const collection = newCollection();
  let current = new QdrantStore({ url: qdrant.url, collection });
  return {
    store: current,
    // A restarted worker: a new client over the same collection, which must find the corpus and its version there.
    reopen: async () => {
      await current.close();
      current = new QdrantStore({ url: qdrant.url, collection });
      return current;
    },
    dispose: async () => {
      await current.close();
      await client.deleteCollection(collection);
    },
  };
});

describe('QdrantStore shared by several workers', () => {
  it('counts every change when two workers write one tenant at once', async () => {
    const collection = newCollection();
    // Two stores are two workers: each has its own in-process tenant lock, so nothing serialises them but Qdrant.
    const [first, second] = [0, 1].map(() => new QdrantStore({ url: qdrant.url, collection }));
    const tenant = 'shared';
    const rounds = 8;
    await Promise.all(
      [first!, second!].flatMap((store, worker) =>
        Array.from({ length: rounds }, (_, n) =>
          store.upsertDocuments(tenant, [makeDoc(`w${worker}-${n}`, `Doc ${n}`, [`text number ${n} of ${worker}`])]),
        ),
      ),
    );
    const stats = await first!.stats(tenant);
    expect(stats).toEqual({ documents: 2 * rounds, chunks: 2 * rounds, corpusVersion: 2 * rounds });
    await Promise.all([first!.deleteDocuments(tenant, ['w0-0']), second!.deleteDocuments(tenant, ['w1-0'])]);
    expect((await second!.stats(tenant)).corpusVersion).toBe(2 * rounds + 2);
    await Promise.all([first!.close(), second!.close()]);
    await client.deleteCollection(collection);
  });

  it('continues from the version a collection written by an older ragline carries, never repeating one', async () => {
    const collection = newCollection();
    const store = new QdrantStore({ url: qdrant.url, collection });
    await store.upsertDocuments('t', [makeDoc('a', 'A', ['alpha'])]);
    // The single counter point older releases wrote, at a version ahead of what the new scheme counted.
    await client.upsert(collection, {
      wait: true,
      points: [
        { id: pointId('t', '\u0000meta'), vector: {}, payload: { kind: 'meta', tenant: 't', corpusVersion: 7 } },
      ],
    });
    expect((await store.stats('t')).corpusVersion).toBe(8);
    await store.upsertDocuments('t', [makeDoc('b', 'B', ['beta'])]);
    expect((await store.stats('t')).corpusVersion).toBe(9);
    // What the query path reads instead of the full stats.
    expect(await store.corpusVersion('t')).toBe(9);
    await store.close();
    await client.deleteCollection(collection);
  });
});

describe('QdrantStore bad input', () => {
  it('refuses a collection with another vector layout, naming the mismatch, and changes nothing in it', async () => {
    const collection = newCollection();
    await client.createCollection(collection, { vectors: { size: 4, distance: 'Dot' } });
    await client.upsert(collection, { wait: true, points: [{ id: 1, vector: [1, 0, 0, 0], payload: { mine: true } }] });
    const store = new QdrantStore({ url: qdrant.url, collection });

    const failure = await store.upsertDocuments('t', [makeDoc('a', 'A', ['alpha'])]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QdrantLayoutError);
    expect((failure as QdrantLayoutError).type).toBe(ErrorType.Configuration);
    const message = (failure as Error).message;
    expect(message).toContain(`collection ${collection} (QDRANT_COLLECTION) has a different vector layout`);
    expect(message).toContain('no sparse vector "bm25"');
    expect(message).toContain('an unnamed 4-dimension dense vector');
    await expect(store.search('t', { query: 'alpha', topK: 3 })).rejects.toThrow(QdrantLayoutError);
    const health = await store.health();
    expect(health.ok).toBe(false);
    expect(health.error).toContain('different vector layout');
    // A worker configured with it stops at start-up naming the mismatch, rather than failing every query.
    await expect(
      createChunkStore(testConfig({ QDRANT_URL: qdrant.url, QDRANT_COLLECTION: collection })),
    ).rejects.toThrow(`collection ${collection} (QDRANT_COLLECTION) has a different vector layout`);

    const info = await client.getCollection(collection);
    expect(info.points_count).toBe(1);
    expect(info.payload_schema).toEqual({});
    expect(info.config.params.sparse_vectors).toBeUndefined();
    await store.close();
    await client.deleteCollection(collection);
  });

  it('names a dense vector of the wrong size when an embedder is configured', async () => {
    const collection = newCollection();
    await client.createCollection(collection, {
      vectors: { dense: { size: 8, distance: 'Cosine' } },
      sparse_vectors: { bm25: { modifier: 'idf' } },
    });
    const embedder: Embedder = {
      model: 'test-embedder',
      dimensions: 16,
      embed: async (texts) => texts.map(() => Array.from({ length: 16 }, () => 0.25)),
    };
    const store = new QdrantStore({ url: qdrant.url, collection, embedder });
    await expect(store.upsertDocuments('t', [makeDoc('a', 'A', ['alpha'])])).rejects.toThrow(
      'dense "dense" of 8 dimensions where the embedder makes 16',
    );
    expect((await client.getCollection(collection)).points_count).toBe(0);
    // The same collection is fine for a lexical-only worker: its points simply carry no dense vector.
    const lexical = new QdrantStore({ url: qdrant.url, collection });
    await lexical.upsertDocuments('t', [makeDoc('a', 'A', ['alpha'])]);
    expect((await lexical.health()).ok).toBe(true);
    await Promise.all([store.close(), lexical.close()]);
    await client.deleteCollection(collection);
  });

  it("fuses with a tenant's RRF k when the request carries one", async () => {
    const collection = newCollection();
    // Sparse ranks a, b, d, c (by how often "alpha" occurs, lengths equal); dense ranks c, b, d, a. With k = 1 the
    // leaders of either leg win (a or c); with k = 100 the smallest rank sum does (b).
    const angle: Record<string, number> = { a: 1, b: 0.2, c: 0, d: 0.5 };
    const texts = {
      a: 'alpha alpha alpha alpha',
      b: 'alpha alpha alpha pad',
      d: 'alpha alpha pad pad',
      c: 'alpha pad pad pad',
    };
    const embedder: Embedder = {
      model: 'test-embedder',
      dimensions: 2,
      embed: async (input) =>
        input.map((text) => {
          const doc = Object.entries(texts).find(([, body]) => text.includes(body))?.[0];
          return [1, doc === undefined ? 0 : angle[doc]!];
        }),
    };
    const store = new QdrantStore({ url: qdrant.url, collection, embedder, rrfK: 60 });
    await store.upsertDocuments(
      't',
      Object.entries(texts).map(([id, body]) => makeDoc(id, 'Doc', [body])),
    );
    const first = async (rrfK: number) =>
      (await store.search('t', { query: 'alpha', topK: 4, fusion: { rrfK } })).hits[0]?.docId;
    expect(['a', 'c']).toContain(await first(1));
    expect(await first(100)).toBe('b');
    await store.close();
    await client.deleteCollection(collection);
  });

  it('says which setting points at a Qdrant that does not answer', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    // Unreachable is not a reason to refuse start-up: the store is built and its health says why it is not ready.
    const store = await createChunkStore(testConfig({ QDRANT_URL: url, QDRANT_COLLECTION: newCollection() }));
    expect(store.kind).toBe('qdrant');
    const health = await store.health();
    expect(health.ok).toBe(false);
    expect(health.error).toContain(`Qdrant at ${url} (QDRANT_URL) unreachable`);
    await expect(store.stats('t')).rejects.toMatchObject({
      type: ErrorType.Unavailable,
      message: expect.stringContaining(`(Qdrant at ${url}, QDRANT_URL)`),
    });
    await store.close();
  });
});
