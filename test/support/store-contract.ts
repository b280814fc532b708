import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChunkStore, DocumentChunks } from '../../lib/domain.js';
import { InvalidInputError } from '../../lib/errors.js';

/** A store under test, and how to get rid of it. */
export interface StoreHarness {
  store: ChunkStore;
  /** Closes the store and opens a new one over the same data (a restarted worker): every store keeps its corpus. */
  reopen: () => Promise<ChunkStore>;
  dispose(): Promise<void>;
}

/** Builds a document whose chunks are `<docId>#<n>`; the hash is derived from the texts unless given. */
export function makeDoc(docId: string, title: string, texts: string[], contentHash?: string): DocumentChunks {
  return {
    docId,
    title,
    contentHash: contentHash ?? `h:${texts.join('|')}`,
    chunks: texts.map((text, position) => ({ id: `${docId}#${position}`, docId, title, text, position })),
  };
}

/**
 * The behaviour every ChunkStore promises (lib/domain.ts). Tenants are random per test so that stores sharing
 * one backend (a Qdrant collection) cannot see each other's leftovers.
 */
export function describeStoreContract(name: string, factory: () => Promise<StoreHarness>): void {
  describe(`ChunkStore contract: ${name}`, () => {
    let harness: StoreHarness;
    let store: ChunkStore;
    let tenant: string;

    beforeEach(async () => {
      harness = await factory();
      store = harness.store;
      tenant = `t-${randomUUID().slice(0, 8)}`;
    });

    afterEach(async () => {
      await harness.dispose();
    });

    it('adds documents, counts them and finds them', async () => {
      const results = await store.upsertDocuments(tenant, [
        makeDoc('whales', 'Whales', ['Blue whales are the largest animals ever known.', 'They eat krill.']),
        makeDoc('bees', 'Bees', ['Honey bees pollinate crops and make honey.']),
      ]);
      expect(results).toEqual([
        { docId: 'whales', status: 'added', chunks: 2 },
        { docId: 'bees', status: 'added', chunks: 1 },
      ]);
      expect(await store.stats(tenant)).toEqual({ documents: 2, chunks: 3, corpusVersion: 1 });

      const response = await store.search(tenant, { query: 'largest whale', topK: 5 });
      expect(response.reason).toBeUndefined();
      const top = response.hits[0]!;
      expect(top).toMatchObject({ chunkId: 'whales#0', docId: 'whales', title: 'Whales' });
      expect(top.text).toContain('Blue whales');
      expect(top.score).toBeGreaterThan(0);
      expect(response.hits.some((hit) => hit.docId === 'bees')).toBe(false);
    });

    it('reports an unchanged document and leaves the corpus version alone', async () => {
      const doc = makeDoc('bees', 'Bees', ['Honey bees pollinate crops.']);
      await store.upsertDocuments(tenant, [doc]);
      const again = await store.upsertDocuments(tenant, [doc]);
      expect(again).toEqual([{ docId: 'bees', status: 'unchanged', chunks: 1 }]);
      expect((await store.stats(tenant)).corpusVersion).toBe(1);
    });

    it('replaces every chunk of an updated document', async () => {
      await store.upsertDocuments(tenant, [makeDoc('doc', 'Doc', ['alpha apples', 'beta bananas', 'gamma grapes'])]);
      const results = await store.upsertDocuments(tenant, [makeDoc('doc', 'Doc', ['delta dates'])]);
      expect(results).toEqual([{ docId: 'doc', status: 'updated', chunks: 1 }]);
      expect(await store.stats(tenant)).toEqual({ documents: 1, chunks: 1, corpusVersion: 2 });
      expect(await store.getChunks(tenant, ['doc#0', 'doc#1', 'doc#2'])).toEqual([
        { id: 'doc#0', docId: 'doc', title: 'Doc', text: 'delta dates', position: 0 },
      ]);
      expect((await store.search(tenant, { query: 'bananas', topK: 5 })).hits).toEqual([]);
      expect((await store.search(tenant, { query: 'dates', topK: 5 })).hits[0]?.chunkId).toBe('doc#0');
    });

    it('deletes documents, reports missing ones and moves the version only on change', async () => {
      await store.upsertDocuments(tenant, [makeDoc('a', 'A', ['first text']), makeDoc('b', 'B', ['second text'])]);
      expect(await store.deleteDocuments(tenant, ['a', 'nope'])).toEqual({ deleted: ['a'], missing: ['nope'] });
      expect(await store.stats(tenant)).toEqual({ documents: 1, chunks: 1, corpusVersion: 2 });
      expect(await store.deleteDocuments(tenant, ['a'])).toEqual({ deleted: [], missing: ['a'] });
      expect((await store.stats(tenant)).corpusVersion).toBe(2);
      expect(await store.documentHash(tenant, 'a')).toBeUndefined();
      const hits = (await store.search(tenant, { query: 'text', topK: 5 })).hits;
      expect(hits.map((hit) => hit.docId)).toEqual(['b']);
    });

    it('keeps tenants apart', async () => {
      const other = `${tenant}-b`;
      await store.upsertDocuments(tenant, [makeDoc('secret', 'Secret', ['the launch codes are hidden here'])]);
      await store.upsertDocuments(other, [makeDoc('public', 'Public', ['opening hours of the library'])]);
      const seen = await store.search(other, { query: 'launch codes hidden', topK: 10 });
      expect(seen.hits.every((hit) => hit.docId !== 'secret')).toBe(true);
      expect(await store.getChunks(other, ['secret#0'])).toEqual([]);
      expect(await store.documentHash(other, 'secret')).toBeUndefined();
      expect(await store.deleteDocuments(other, ['secret'])).toEqual({ deleted: [], missing: ['secret'] });
      expect(await store.stats(other)).toEqual({ documents: 1, chunks: 1, corpusVersion: 1 });
      expect((await store.search(tenant, { query: 'launch codes', topK: 1 })).hits[0]?.docId).toBe('secret');
    });

    it('returns chunks by id in the order asked, skipping unknown ids', async () => {
      await store.upsertDocuments(tenant, [makeDoc('d', 'D', ['zero', 'one', 'two'])]);
      const chunks = await store.getChunks(tenant, ['d#2', 'missing#0', 'd#0']);
      expect(chunks.map((chunk) => chunk.id)).toEqual(['d#2', 'd#0']);
      expect(chunks[0]).toEqual({ id: 'd#2', docId: 'd', title: 'D', text: 'two', position: 2 });
    });

    it('returns the stored content hash', async () => {
      await store.upsertDocuments(tenant, [makeDoc('d', 'D', ['text'], 'sha256:abc')]);
      expect(await store.documentHash(tenant, 'd')).toBe('sha256:abc');
      expect(await store.documentHash(tenant, 'other')).toBeUndefined();
    });

    it('says why a query cannot be searched', async () => {
      expect(await store.search(tenant, { query: 'anything', topK: 5 })).toEqual({ hits: [], reason: 'empty-corpus' });
      await store.upsertDocuments(tenant, [makeDoc('d', 'D', ['some text'])]);
      expect(await store.search(tenant, { query: 'the of and', topK: 5 })).toEqual({ hits: [], reason: 'no-terms' });
      expect(await store.search(tenant, { query: '  ?! ', topK: 5 })).toEqual({ hits: [], reason: 'no-terms' });
    });

    it('rejects a document without text, naming it, and stores nothing from that batch', async () => {
      const bad = makeDoc('blank', 'Blank', ['   ', '']);
      const good = makeDoc('good', 'Good', ['real text']);
      await expect(store.upsertDocuments(tenant, [good, bad])).rejects.toThrow(InvalidInputError);
      await expect(store.upsertDocuments(tenant, [bad])).rejects.toThrow(/blank/);
      expect(await store.stats(tenant)).toEqual({ documents: 0, chunks: 0, corpusVersion: 0 });
    });

    it('keeps its corpus across a reopen', async () => {
      await store.upsertDocuments(tenant, [makeDoc('a', 'A', ['persistent penguins']), makeDoc('b', 'B', ['gone'])]);
      await store.deleteDocuments(tenant, ['b']);
      await store.upsertDocuments(tenant, [makeDoc('a', 'A', ['persistent puffins'])]);
      store = await harness.reopen();
      expect(await store.stats(tenant)).toEqual({ documents: 1, chunks: 1, corpusVersion: 3 });
      expect((await store.search(tenant, { query: 'puffins', topK: 3 })).hits[0]?.chunkId).toBe('a#0');
      expect((await store.search(tenant, { query: 'penguins', topK: 3 })).hits).toEqual([]);
      expect(await store.documentHash(tenant, 'b')).toBeUndefined();
    });

    it('reports health', async () => {
      const health = await store.health();
      expect(health.ok).toBe(true);
      expect(health.latencyMs).toBeGreaterThanOrEqual(0);
    });
  });
}
