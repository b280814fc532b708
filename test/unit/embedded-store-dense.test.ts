import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import type { DocumentChunks } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { tempDir } from '../support/ragline.js';

const DIMS = 16;
type Fault = 'none' | 'down' | 'wrong-dimension' | 'nan' | 'fewer';

/** Bag of words hashed into DIMS buckets: texts sharing words get similar vectors, deterministically. */
function hashVector(text: string): number[] {
  const vector = new Array<number>(DIMS).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    let hash = 0;
    for (const char of word) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    vector[hash % DIMS]! += 1;
  }
  vector[0]! += 0.01;
  return vector;
}

/**
 * The real OpenAIEmbedder over a scripted HTTP layer: the faults a real server cannot be made to produce on
 * demand (wrong dimensions, NaN, missing vectors, an outage).
 */
function scriptedEmbedder(model = 'bag-of-words') {
  const state = { fault: 'none' as Fault, requests: 0, inputTypes: [] as (string | undefined)[] };
  const client = new OpenAI({
    apiKey: 'test',
    baseURL: 'http://embeddings.test/v1',
    maxRetries: 0,
    fetch: async (_url, init) => {
      state.requests++;
      const body = JSON.parse(String(init?.body)) as { input: string[]; input_type?: string };
      state.inputTypes.push(body.input_type);
      if (state.fault === 'down') return new Response('unavailable', { status: 503 });
      let vectors = body.input.map(hashVector);
      if (state.fault === 'wrong-dimension') vectors = vectors.map((vector) => vector.slice(1));
      if (state.fault === 'nan') vectors = vectors.map((vector) => [Number.NaN, ...vector.slice(1)]);
      if (state.fault === 'fewer') vectors = vectors.slice(1);
      return Response.json({
        object: 'list',
        model,
        usage: { prompt_tokens: 1, total_tokens: 1 },
        data: vectors.map((embedding, index) => ({ object: 'embedding', index, embedding })),
      });
    },
  });
  const embedder = new OpenAIEmbedder(
    {
      model,
      dimensions: DIMS,
      timeoutMs: 5000,
      queryMode: { inputType: 'query' },
      documentMode: { inputType: 'passage' },
    },
    { client },
  );
  return { embedder, state };
}

const doc = (docId: string, title: string, ...texts: string[]): DocumentChunks => ({
  docId,
  title,
  contentHash: `${title}:${texts.join('|')}`,
  chunks: texts.map((text, position) => ({ id: `${docId}#${position}`, docId, title, text, position })),
});

const corpus = [
  doc('webhooks', 'Webhooks', 'Receive event notifications by HTTP callbacks to your endpoint.'),
  doc('billing', 'Billing', 'Invoices are issued monthly and paid by card.', 'Refunds take five days.'),
  doc('sso', 'Single sign-on', 'Configure SAML identity providers for your organisation.'),
];

describe('EmbeddedStore with a dense leg', () => {
  it('fuses both legs, embeds queries and documents in their own modes, and persists vectors', async () => {
    const dir = await tempDir();
    const { embedder, state } = scriptedEmbedder();
    const store = await EmbeddedStore.open(dir, { embedder });
    await store.upsertDocuments('t', corpus);
    expect(state.inputTypes).toEqual(['passage']);
    // No shared term with the webhooks page: only the dense leg can rank it (the hashed "callbacks").
    const response = await store.search('t', { query: 'callbacks', topK: 2 });
    expect(response.degradedReason).toBeUndefined();
    expect(response.hits[0]?.docId).toBe('webhooks');
    expect(state.inputTypes.at(-1)).toBe('query');
    await store.close();

    const { embedder: again, state: againState } = scriptedEmbedder();
    const reopened = await EmbeddedStore.open(dir, { embedder: again });
    expect((await reopened.search('t', { query: 'callbacks', topK: 2 })).hits[0]?.docId).toBe('webhooks');
    // Only the query was embedded: the documents' vectors came back from disk.
    expect(againState.requests).toBe(1);
    await reopened.close();
  });

  it('keeps dense vectors in step on update and delete, across a reopen', async () => {
    const dir = await tempDir();
    const { embedder } = scriptedEmbedder();
    const store = await EmbeddedStore.open(dir, { embedder, compactionBytes: 1 });
    await store.upsertDocuments('t', corpus);
    await store.upsertDocuments('t', [doc('billing', 'Billing', 'Invoices are monthly.')]);
    await store.deleteDocuments('t', ['webhooks']);
    const hits = async (s: EmbeddedStore) =>
      (await s.search('t', { query: 'refunds callbacks invoices', topK: 10 })).hits.map((hit) => hit.chunkId).sort();
    expect(await hits(store)).toEqual(['billing#0', 'sso#0']);
    await store.close();
    const reopened = await EmbeddedStore.open(dir, { embedder: scriptedEmbedder().embedder });
    const response = await reopened.search('t', { query: 'refunds callbacks invoices', topK: 10 });
    expect(response.degradedReason).toBeUndefined();
    expect(response.hits.map((hit) => hit.chunkId)).not.toContain('billing#1');
    expect(response.hits.map((hit) => hit.chunkId)).not.toContain('webhooks#0');
    await reopened.close();
  });

  it.each<[Fault, RegExp]>([
    ['wrong-dimension', /15 dimensions; expected 16/],
    ['nan', /NaN/],
    ['fewer', /returned 2 vectors for 3 texts/],
    ['down', /failed, nothing was written/],
  ])('rejects a batch whose embeddings are bad (%s), writing nothing', async (fault, message) => {
    const dir = await tempDir();
    const { embedder, state } = scriptedEmbedder();
    const store = await EmbeddedStore.open(dir, { embedder });
    await store.upsertDocuments('t', [corpus[0]!]);
    state.fault = fault;
    const error = await store.upsertDocuments('t', corpus.slice(1)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    expect((await store.stats('t')).documents).toBe(1);
    state.fault = 'none';
    expect((await store.search('t', { query: 'callbacks', topK: 3 })).hits.map((hit) => hit.docId)).toEqual([
      'webhooks',
    ]);
    await store.close();
    const reopened = await EmbeddedStore.open(dir, { embedder: scriptedEmbedder().embedder });
    expect((await reopened.stats('t')).documents).toBe(1);
    await reopened.close();
  });

  it('answers lexically, flagged, when the query cannot be embedded', async () => {
    const { embedder, state } = scriptedEmbedder();
    const store = await EmbeddedStore.open(await tempDir(), { embedder });
    await store.upsertDocuments('t', corpus);
    state.fault = 'down';
    const response = await store.search('t', { query: 'refunds', topK: 3 });
    expect(response.degradedReason).toBe('embedder-unavailable');
    expect(response.hits.map((hit) => hit.chunkId)).toEqual(['billing#1']);
    await store.close();
  });

  it('never mixes another model’s vectors in and searches lexically until the tenant is re-embedded', async () => {
    const dir = await tempDir();
    const store = await EmbeddedStore.open(dir, { embedder: scriptedEmbedder('model-a').embedder });
    await store.upsertDocuments('t', corpus);
    await store.close();
    const other = await EmbeddedStore.open(dir, { embedder: scriptedEmbedder('model-b').embedder });
    // Accepted, lexically: its model-b vectors are staged for the re-embedding (embedded-store-reembed.test.ts).
    const [added] = await other.upsertDocuments('t', [doc('new', 'New', 'Something else.')]);
    expect(added?.status).toBe('added');
    expect((await other.embeddingStatus('t')).live).toMatch(/model-a/);
    const response = await other.search('t', { query: 'refunds', topK: 3 });
    expect(response.degradedReason).toBe('embedding-mismatch');
    expect(response.hits[0]?.chunkId).toBe('billing#1');
    // Re-embedding by hand still works: delete the tenant's documents and ingest again with the new model.
    await other.deleteDocuments('t', [...corpus.map((d) => d.docId), 'new']);
    await other.upsertDocuments('t', corpus);
    expect((await other.search('t', { query: 'callbacks', topK: 1 })).degradedReason).toBeUndefined();
    await other.close();
  });
});
