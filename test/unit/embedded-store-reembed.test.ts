import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { DocumentChunks } from '../../lib/domain.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import type { Embedder } from '../../lib/retrieval/embedder.js';
import { isReembeddable, NoEmbedderError } from '../../lib/retrieval/reembedding.js';
import { tempDir } from '../support/ragline.js';

const DIMS = 8;

/** Bag of words hashed into DIMS buckets, salted by the model: two models give different vectors for one text. */
function fakeEmbedder(model: string): Embedder & { texts: string[]; failing: boolean } {
  const embedder = {
    model,
    dimensions: DIMS,
    identity: `${model}|${DIMS}`,
    texts: [] as string[],
    failing: false,
    async embed(texts: string[]) {
      if (embedder.failing) throw new RaglineError(ErrorType.Unavailable, 'embedder down');
      embedder.texts.push(...texts);
      return texts.map((text) => {
        const vector = new Array<number>(DIMS).fill(0.01);
        for (const word of `${model} ${text}`.toLowerCase().match(/[a-z]+/g) ?? []) {
          let hash = 0;
          for (const char of word) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
          vector[hash % DIMS]! += 1;
        }
        return vector;
      });
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

describe('EmbeddedStore re-embedding (staging and switch)', () => {
  const stores: EmbeddedStore[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    for (const dir of dirs.splice(0)) await fs.rm(dir, { recursive: true, force: true });
  });
  const open = async (dir: string, embedder?: Embedder) => {
    const store = await EmbeddedStore.open(dir, embedder ? { embedder } : {});
    stores.push(store);
    return store;
  };
  const reopen = async (store: EmbeddedStore, dir: string, embedder?: Embedder) => {
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    return open(dir, embedder);
  };
  /** A tenant indexed by `first` (no embedder: lexical only), the store reopened with `second`. */
  const indexedThenReconfigured = async (second: Embedder, first?: Embedder) => {
    const dir = await tempDir('ragline-reembed-');
    dirs.push(dir);
    const before = await open(dir, first);
    await before.upsertDocuments('t', CORPUS);
    const after = await reopen(before, dir, second);
    return { dir, store: after };
  };

  it('reports the mismatch, answers lexically, and stages without touching the live index', async () => {
    const b = fakeEmbedder('modelb');
    const { store } = await indexedThenReconfigured(b);
    expect(isReembeddable(store)).toBe(true);
    expect(await store.tenantsNeedingReembedding()).toEqual(['t']);
    const status = await store.embeddingStatus('t');
    expect(status).toMatchObject({ needed: true, configured: 'modelb|8', chunks: CHUNKS });
    expect(status.live).toBeUndefined();
    expect((await store.search('t', { query: 'zebras census', topK: 3 })).degradedReason).toBe('embedding-mismatch');

    await store.beginReembedding('t');
    const first = await store.stageEmbeddings('t', { maxChunks: 3 });
    // Whole documents: lanterns (2) fits, zebras (3) would pass 3, so the batch stops.
    expect(first).toEqual({ documents: 1, chunks: 2, chunksStaged: 2, chunksTotal: CHUNKS });
    expect((await store.search('t', { query: 'zebras census', topK: 3 })).degradedReason).toBe('embedding-mismatch');
    // Not complete: the switch refuses and says how much is left.
    expect(await store.switchEmbeddings('t')).toMatchObject({ switched: false, chunksRemaining: CHUNKS - 2 });
    expect((await store.embeddingStatus('t')).live).toBeUndefined();
  });

  it('resumes after a restart from the staged batches, embedding none of them again', async () => {
    const b = fakeEmbedder('modelb');
    const { store, dir } = await indexedThenReconfigured(b);
    await store.stageEmbeddings('t', { maxChunks: 2 });
    await store.stageEmbeddings('t', { maxChunks: 3 });
    const embeddedBefore = [...b.texts];
    expect(embeddedBefore).toHaveLength(5);

    const b2 = fakeEmbedder('modelb');
    const restarted = await reopen(store, dir, b2);
    expect((await restarted.embeddingStatus('t')).staging).toEqual({ identity: 'modelb|8', chunksStaged: 5 });
    let result;
    do result = await restarted.stageEmbeddings('t', { maxChunks: 100 });
    while (result.documents > 0);
    expect(b2.texts).toHaveLength(CHUNKS - 5);
    expect(b2.texts.some((text) => embeddedBefore.includes(text))).toBe(false);
    const switched = await restarted.switchEmbeddings('t');
    expect(switched).toMatchObject({ switched: true, chunksRemaining: 0, identity: 'modelb|8' });
    expect((await restarted.search('t', { query: 'zebras census', topK: 3 })).degradedReason).toBeUndefined();
  });

  it('switches in one step, bumps the corpus version, and survives a reopen without its staging file', async () => {
    const a = fakeEmbedder('modela');
    const b = fakeEmbedder('modelb');
    const { store, dir } = await indexedThenReconfigured(b, a);
    expect((await store.embeddingStatus('t')).live).toBe('modela|8');
    const versionBefore = await store.corpusVersion('t');
    // An upsert is not refused any more: it goes in lexically, its vectors from B staged.
    const [added] = await store.upsertDocuments('t', [doc('comets', 'comets have tails of ice and dust', 1)]);
    expect(added?.status).toBe('added');
    expect((await store.search('t', { query: 'comets ice', topK: 1 })).hits[0]?.docId).toBe('comets');
    expect((await store.search('t', { query: 'comets ice', topK: 1 })).degradedReason).toBe('embedding-mismatch');
    expect((await store.embeddingStatus('t')).staging?.chunksStaged).toBe(1);

    while ((await store.stageEmbeddings('t', { maxChunks: 4 })).documents > 0);
    // Staging never embeds what the upsert staged.
    expect(b.texts.filter((text) => text.includes('comets'))).toHaveLength(1);
    const switched = await store.switchEmbeddings('t');
    expect(switched.switched).toBe(true);
    expect(switched.corpusVersion).toBeGreaterThan(versionBefore + 1);
    const status = await store.embeddingStatus('t');
    expect(status).toMatchObject({ live: 'modelb|8', needed: false, chunks: CHUNKS + 1 });
    expect(status.staging).toBeUndefined();
    expect((await store.search('t', { query: 'comets ice', topK: 3 })).degradedReason).toBeUndefined();
    expect(await store.tenantsNeedingReembedding()).toEqual([]);

    const files = await fs.readdir(path.join(dir, 'index'));
    expect(files.some((name) => name.endsWith('.staging.jsonl'))).toBe(false);
    const reopened = await reopen(store, dir, fakeEmbedder('modelb'));
    expect(await reopened.embeddingStatus('t')).toMatchObject({ live: 'modelb|8', needed: false });
    expect((await reopened.search('t', { query: 'zebras census', topK: 3 })).degradedReason).toBeUndefined();
    // After the switch, ingestion takes the normal path again: vectors straight into the live index.
    await reopened.upsertDocuments('t', [doc('storms', 'storms bring rain and wind', 1)]);
    expect((await reopened.embeddingStatus('t')).needed).toBe(false);
  });

  it('picks up documents changed or deleted while staging before it switches', async () => {
    const b = fakeEmbedder('modelb');
    const { store } = await indexedThenReconfigured(b);
    while ((await store.stageEmbeddings('t', { maxChunks: 100 })).documents > 0);
    // Changed after it was staged: the upsert stages its new version itself.
    await store.upsertDocuments('t', [doc('tides', 'tides rise twice a day', 2)]);
    await store.deleteDocuments('t', ['glaciers']);
    const result = await store.switchEmbeddings('t');
    expect(result.switched).toBe(true);
    expect((await store.embeddingStatus('t')).chunks).toBe(CHUNKS - 1 - 2 + 2);
    expect((await store.search('t', { query: 'tides rise', topK: 3 })).degradedReason).toBeUndefined();
  });

  it('writes nothing when the embedder fails, and refuses without an embedder with a typed error', async () => {
    const b = fakeEmbedder('modelb');
    const { store, dir } = await indexedThenReconfigured(b);
    b.failing = true;
    await expect(store.stageEmbeddings('t', { maxChunks: 3 })).rejects.toMatchObject({
      type: ErrorType.Unavailable,
    });
    await expect(store.upsertDocuments('t', [doc('comets', 'comets', 1)])).rejects.toMatchObject({
      type: ErrorType.Unavailable,
    });
    expect((await store.embeddingStatus('t')).staging?.chunksStaged).toBe(0);
    expect(await store.documentHash('t', 'comets')).toBeUndefined();

    const lexical = await reopen(store, dir);
    await expect(lexical.stageEmbeddings('t', { maxChunks: 3 })).rejects.toBeInstanceOf(NoEmbedderError);
    await expect(lexical.switchEmbeddings('t')).rejects.toMatchObject({ type: ErrorType.Configuration });
    expect(await lexical.tenantsNeedingReembedding()).toEqual([]);
    // Opened without an embedder, the stale staging area is dropped.
    const files = await fs.readdir(path.join(dir, 'index'));
    expect(files.some((name) => name.endsWith('.staging.jsonl'))).toBe(false);
  });

  it('skips a torn staging record and re-embeds only its documents', async () => {
    const b = fakeEmbedder('modelb');
    const { store, dir } = await indexedThenReconfigured(b);
    await store.stageEmbeddings('t', { maxChunks: 2 });
    await store.close();
    stores.splice(stores.indexOf(store), 1);
    const file = (await fs.readdir(path.join(dir, 'index'))).find((name) => name.endsWith('.staging.jsonl'))!;
    // A crash mid-append: half a record, no newline.
    await fs.appendFile(path.join(dir, 'index', file), 'J1 999 0000abcd {"docs":[{"docId":"zeb');
    const b2 = fakeEmbedder('modelb');
    const restarted = await open(dir, b2);
    expect((await restarted.embeddingStatus('t')).staging?.chunksStaged).toBe(2);
    while ((await restarted.stageEmbeddings('t', { maxChunks: 3 })).documents > 0);
    expect(b2.texts).toHaveLength(CHUNKS - 2);
    expect((await restarted.switchEmbeddings('t')).switched).toBe(true);
  });
});
