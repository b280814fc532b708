import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../../lib/retrieval/embedded-store.js';
import { toDocument } from '../datasets/beir.js';
import type { Engine } from './engine.js';

/** ragline's EmbeddedStore in a throwaway data dir: lexical BM25F, or with `options.embedder` the hybrid. */
export function raglineEngine(options: EmbeddedStoreOptions, name = 'ragline'): Engine {
  let store: EmbeddedStore | undefined;
  let dir = '';
  return {
    name,
    async build(corpus) {
      dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
      store = await EmbeddedStore.open(dir, options);
      // Batches of 200 as the ingestion activity sends them (RAGLINE_INGEST_BATCH), each persisted.
      for (let i = 0; i < corpus.length; i += 200) {
        await store.upsertDocuments('bench', corpus.slice(i, i + 200).map(toDocument));
      }
      // The first search builds the frozen postings; that is indexing work, so it is timed here.
      await store.search('bench', { query: 'warm up', topK: 1 });
    },
    async search(query, k) {
      const scores = new Map<string, number>();
      const response = await store!.search('bench', { query, topK: k });
      if (response.degradedReason) throw new Error(`${name} search degraded: ${response.degradedReason}`);
      for (const hit of response.hits) {
        // A document scores as its best chunk (one chunk per document here anyway).
        scores.set(hit.docId, Math.max(hit.score, scores.get(hit.docId) ?? 0));
      }
      return scores;
    },
    async dispose() {
      await store?.close();
      store = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
