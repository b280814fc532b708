import { randomUUID } from 'node:crypto';
import { QdrantClient } from '@qdrant/js-client-rest';
import { QdrantStore } from '../../lib/retrieval/qdrant-store.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { toDocument } from '../datasets/beir.js';
import type { Engine } from './engine.js';

/**
 * QdrantStore against the server at QDRANT_URL, in a throwaway collection: sparse BM25 alone, or with an embedder its
 * hybrid path (both legs prefetched, fused by `fusion`: RRF with rrfK, or Qdrant's DBSF), over the same cached
 * embeddings as the embedded store's hybrid. Queries and ingestion go over HTTP as a worker's do, so ms/query and
 * docs/s include the round trips; its rssMb is this client's only, the server's memory is its own.
 */
export function qdrantEngine(
  url: string,
  apiKey: string | undefined,
  hybrid?: { embedder: OpenAIEmbedder; fusion: 'rrf' | 'dbsf'; rrfK?: number },
): Engine {
  const collection = `ragline_bench_${randomUUID().slice(0, 8)}`;
  let store: QdrantStore | undefined;
  return {
    name: hybrid ? `qdrant-hybrid-${hybrid.fusion}` : 'qdrant',
    async build(corpus) {
      store = new QdrantStore({
        url,
        apiKey,
        collection,
        ...(hybrid
          ? {
              embedder: hybrid.embedder,
              fusion: hybrid.fusion,
              ...(hybrid.rrfK === undefined ? {} : { rrfK: hybrid.rrfK }),
            }
          : {}),
      });
      // Batches of 200 as the ingestion activity sends them (RAGLINE_INGEST_BATCH).
      for (let i = 0; i < corpus.length; i += 200) {
        await store.upsertDocuments('bench', corpus.slice(i, i + 200).map(toDocument));
      }
    },
    async search(query, k) {
      const scores = new Map<string, number>();
      for (const hit of (await store!.search('bench', { query, topK: k })).hits) {
        scores.set(hit.docId, Math.max(hit.score, scores.get(hit.docId) ?? 0));
      }
      return scores;
    },
    async dispose() {
      await store?.close();
      store = undefined;
      await new QdrantClient({ url, apiKey, checkCompatibility: false }).deleteCollection(collection);
    },
  };
}
