import { randomUUID } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DocumentChunks } from '../../lib/domain.js';
import type { Embedder } from '../../lib/retrieval/embedder.js';
import { pointId } from '../../lib/retrieval/qdrant/points.js';
import { QdrantStore } from '../../lib/retrieval/qdrant-store.js';
import { isReembeddable } from '../../lib/retrieval/reembedding.js';
import { TestQdrant } from '../support/qdrant.js';

/**
 * Re-embedding a Qdrant-backed tenant with another model (another size, too), on a real Qdrant: the tenant keeps
 * answering (sparse only, flagged) while it is staged into a collection of its own, switches behind its alias, a
 * restarted store resumes without embedding staged documents again, and the other tenants stay as they were.
 */

let qdrant: TestQdrant;
let client: QdrantClient;

beforeAll(async () => {
  qdrant = await TestQdrant.start();
  client = new QdrantClient({ url: qdrant.url, checkCompatibility: false });
});

afterAll(async () => {
  await qdrant?.stop();
});

/** Bag of words hashed into `dims` buckets, salted by the model: two models give different vectors for one text. */
function fakeEmbedder(
  model: string,
  dims: number,
): Embedder & { texts: string[]; vectorOf: (text: string) => number[] } {
  const embed = (text: string) => {
    const vector = new Array<number>(dims).fill(0.01);
    for (const word of `${model} ${text}`.toLowerCase().match(/[a-z]+/g) ?? []) {
      let hash = 0;
      for (const char of word) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
      vector[hash % dims]! += 1;
    }
    return vector;
  };
  const embedder = {
    model,
    dimensions: dims,
    identity: `${model}|${dims}`,
    texts: [] as string[],
    vectorOf: embed,
    async embed(texts: string[]) {
      embedder.texts.push(...texts);
      return texts.map(embed);
    },
  };
  return embedder;
}

function doc(id: string, text: string, chunks = 1): DocumentChunks {
  return {
    docId: id,
    title: id,
    contentHash: `${id}:${text}`,
    chunks: Array.from({ length: chunks }, (_, position) => ({
      id: `${id}#${position}`,
      docId: id,
      title: id,
      text: `${text} part ${position}`,
      position,
    })),
  };
}

const CORPUS = [
  doc('lanterns', 'moss lanterns glow green in damp oak forests', 2),
  doc('zebras', 'the plateau census counts zebras each spring', 3),
  doc('tides', 'tides follow the moon and the sun', 1),
  doc('glaciers', 'glaciers carve valleys over thousands of years', 2),
];
const CHUNKS = CORPUS.reduce((sum, d) => sum + d.chunks.length, 0);

const unitLength = (vector: number[]) => {
  const norm = Math.hypot(...vector);
  return vector.map((value) => value / norm);
};

describe('QdrantStore re-embedding', () => {
  const stores: QdrantStore[] = [];
  const open = (collection: string, embedder: Embedder) => {
    const store = new QdrantStore({ url: qdrant.url, collection, embedder });
    stores.push(store);
    return store;
  };
  afterAll(async () => {
    for (const store of stores) await store.close();
  });

  it('stages in the background, answers flagged meanwhile, switches behind an alias, leaves other tenants alone', async () => {
    const collection = `ragline_reembed_${randomUUID().slice(0, 8)}`;
    const a = fakeEmbedder('modela', 8);
    const before = open(collection, a);
    await before.upsertDocuments('t', CORPUS);
    await before.upsertDocuments('other', [doc('owls', 'owls hunt at night over the barley fields', 2)]);
    const otherPoints = await client.retrieve(collection, {
      ids: [pointId('other', 'owls#0'), pointId('other', 'owls#1')],
      with_vector: true,
      with_payload: true,
    });
    expect(await before.tenantsNeedingReembedding()).toEqual([]);
    const versionBefore = await before.corpusVersion('t');

    // A worker started with another model (and another size): detected, not searched with mismatched vectors.
    const b = fakeEmbedder('modelb', 16);
    const store = open(collection, b);
    expect(isReembeddable(store)).toBe(true);
    expect((await store.health()).error).toBeUndefined();
    expect(await store.tenantsNeedingReembedding()).toEqual(['other', 't']);
    const status = await store.embeddingStatus('t');
    expect(status).toMatchObject({ needed: true, live: 'modela|8', configured: 'modelb|16', chunks: CHUNKS });
    expect(status.documents).toBe(CORPUS.length);
    const flagged = await store.search('t', { query: 'zebras census', topK: 3 });
    expect(flagged.degradedReason).toBe('embedding-mismatch');
    expect(flagged.hits[0]?.docId).toBe('zebras');
    expect(b.texts).toEqual([]);

    expect((await store.beginReembedding('t')).staging).toEqual({ identity: 'modelb|16', chunksStaged: 0 });
    // Whole documents, in docId order: glaciers (2) fits, lanterns (2) would pass 3.
    expect(await store.stageEmbeddings('t', { maxChunks: 3 })).toEqual({
      documents: 1,
      chunks: 2,
      chunksStaged: 2,
      chunksTotal: CHUNKS,
    });
    // Ingestion meanwhile goes into the live collection without a dense vector; a deletion too.
    await store.upsertDocuments('t', [doc('comets', 'comets trail ice and dust past the sun', 1)]);
    await store.deleteDocuments('t', ['tides']);
    expect((await store.search('t', { query: 'comets ice', topK: 3 })).degradedReason).toBe('embedding-mismatch');
    expect(await store.switchEmbeddings('t')).toMatchObject({ switched: false, chunksRemaining: 6 });

    // A restarted worker resumes from what is staged: glaciers is not embedded again.
    const b2 = fakeEmbedder('modelb', 16);
    const restarted = open(collection, b2);
    expect((await restarted.beginReembedding('t')).staging).toEqual({ identity: 'modelb|16', chunksStaged: 2 });
    let staged;
    do staged = await restarted.stageEmbeddings('t', { maxChunks: 3 });
    while (staged.documents > 0);
    expect(b2.texts.some((text) => text.includes('glaciers'))).toBe(false);
    expect(b2.texts).toHaveLength(6);
    expect(staged).toMatchObject({ chunksStaged: 8, chunksTotal: 8 });

    const switched = await restarted.switchEmbeddings('t');
    expect(switched).toMatchObject({ switched: true, chunksRemaining: 0, identity: 'modelb|16' });
    // Two changes (comets, tides) and the switch itself: cached answers of the old ranking are not served.
    expect(switched.corpusVersion).toBe(versionBefore + 3);
    expect(await restarted.stats('t')).toEqual({ documents: 4, chunks: 8, corpusVersion: versionBefore + 3 });
    expect(await restarted.embeddingStatus('t')).toMatchObject({ needed: false, live: 'modelb|16' });
    expect(await restarted.tenantsNeedingReembedding()).toEqual(['other']);

    // Hybrid now, with the new model's query and document vectors.
    const hybrid = await restarted.search('t', { query: 'zebras census', topK: 3 });
    expect(hybrid.degradedReason).toBeUndefined();
    expect(hybrid.hits[0]?.docId).toBe('zebras');
    expect(b2.texts).toContain('zebras census');
    const alias = `${collection}__tenant_`;
    const { aliases } = await client.getAliases();
    const mine = aliases.filter((entry) => entry.alias_name.startsWith(alias));
    expect(mine).toHaveLength(1);
    const [zebra] = await client.retrieve(mine[0]!.alias_name, { ids: [pointId('t', 'zebras#1')], with_vector: true });
    const dense = (zebra!.vector as Record<string, number[]>).dense!;
    const expected = unitLength(b.vectorOf('zebras\nthe plateau census counts zebras each spring part 1'));
    dense.forEach((value, i) => expect(value).toBeCloseTo(expected[i]!, 5));
    expect(await restarted.getChunks('t', ['tides#0', 'comets#0'])).toMatchObject([{ id: 'comets#0' }]);
    // Another worker finds the tenant's own collection; the first one's writes (which never trust a cached route) go
    // there too.
    const fresh = open(collection, b);
    expect((await fresh.search('t', { query: 'comets ice', topK: 1 })).hits[0]?.docId).toBe('comets');
    await store.upsertDocuments('t', [doc('moons', 'moons circle their planets', 1)]);
    expect(await fresh.stats('t')).toEqual({ documents: 5, chunks: 9, corpusVersion: versionBefore + 4 });

    // The shared collection kept the other tenant exactly, and holds nothing of the re-embedded one.
    expect(
      (await client.count(collection, { filter: { must: [{ key: 'tenant', match: { value: 't' } }] } })).count,
    ).toBe(0);
    const otherAfter = await client.retrieve(collection, {
      ids: otherPoints.map((point) => point.id),
      with_vector: true,
      with_payload: true,
    });
    const byId = (points: typeof otherPoints) => [...points].sort((x, y) => String(x.id).localeCompare(String(y.id)));
    expect(byId(otherAfter)).toEqual(byId(otherPoints));
    // One collection of the tenant's own is left: the live one behind the alias.
    const { collections } = await client.getCollections();
    expect(collections.filter((entry) => entry.name.startsWith(alias)).map((entry) => entry.name)).toEqual([
      mine[0]!.collection_name,
    ]);

    // A second model change re-embeds again, from the tenant's own collection, and drops it at the switch.
    const c = fakeEmbedder('modelc', 8);
    const third = open(collection, c);
    expect((await third.embeddingStatus('t')).needed).toBe(true);
    await third.beginReembedding('t');
    while ((await third.stageEmbeddings('t', { maxChunks: 100 })).documents > 0);
    expect(await third.switchEmbeddings('t')).toMatchObject({ switched: true, corpusVersion: versionBefore + 5 });
    expect((await third.search('t', { query: 'glaciers valleys', topK: 1 })).hits[0]?.docId).toBe('glaciers');
    const left = (await client.getCollections()).collections.filter((entry) => entry.name.startsWith(alias));
    expect(left).toHaveLength(1);
    expect(left[0]!.name).not.toBe(mine[0]!.collection_name);
  });
});
