import type { QdrantClient } from '@qdrant/js-client-rest';
import type { SearchHit, SearchRequest, SearchResponse } from '../../domain.js';
import type { Analyzer } from '../analyzer.js';
import type { Embedder } from '../embedder.js';
import { DEFAULT_RRF_K } from '../fusion.js';
import type { Route } from './collections.js';
import { DENSE, match, querySparse, SPARSE, type ChunkPayload } from './points.js';
import { countChunks, type QdrantCall } from './tenant-points.js';

/** What a search needs of QdrantStore. */
export interface SearchDeps {
  client: QdrantClient;
  call: QdrantCall;
  analyzer: Analyzer;
  embedder: Embedder | undefined;
  rrfK: number | undefined;
  fusion: 'rrf' | 'dbsf' | undefined;
  prefetchFactor: number;
}

/**
 * One tenant's search in its collection: hybrid through the Query API (both legs prefetched under the tenant filter
 * and fused) when the configured embedder can search the collection's dense vectors, the sparse leg alone otherwise,
 * saying why (`embedder-unavailable`, or `embedding-mismatch` while the tenant awaits or undergoes re-embedding).
 */
export async function searchTenant(
  deps: SearchDeps,
  route: Route,
  tenant: string,
  request: SearchRequest,
): Promise<SearchResponse> {
  const terms = deps.analyzer.analyze(request.query);
  if (terms.length === 0) return { hits: [], reason: 'no-terms' };
  const collection = route.collection;
  const filter = { must: [match('kind', 'chunk'), match('tenant', tenant)] };
  const sparse = querySparse(terms);
  const candidates = request.topK * deps.prefetchFactor;
  let response: { points: { score: number; payload?: Record<string, unknown> | null }[] };
  let vector: number[] | undefined;
  let degradedReason: SearchResponse['degradedReason'];
  if (deps.embedder && !route.dense) degradedReason = 'embedding-mismatch';
  else if (deps.embedder) {
    // The sparse leg alone still answers when the embedder is down; the response says so.
    vector = await deps.embedder.embed([request.query], 'query').then(
      ([embedded]) => embedded,
      () => undefined,
    );
    if (!vector) degradedReason = 'embedder-unavailable';
  }
  if (vector) {
    response = await deps.call('query', () =>
      deps.client.query(collection, {
        prefetch: [
          { query: vector, using: DENSE, filter, limit: candidates },
          { query: sparse, using: SPARSE, filter, limit: candidates },
        ],
        query:
          deps.fusion === 'dbsf'
            ? { fusion: 'dbsf' }
            : { rrf: { k: request.fusion?.rrfK ?? deps.rrfK ?? DEFAULT_RRF_K } },
        filter,
        limit: request.topK,
        with_payload: true,
      } as never),
    );
  } else {
    response = await deps.call('query', () =>
      deps.client.query(collection, {
        query: sparse,
        using: SPARSE,
        filter,
        limit: request.topK,
        with_payload: true,
      } as never),
    );
  }
  const hits: SearchHit[] = response.points.map((point) => {
    const payload = point.payload as unknown as ChunkPayload;
    return {
      chunkId: payload.chunkId,
      docId: payload.docId,
      title: payload.title,
      text: payload.text,
      score: point.score,
    };
  });
  const access = { client: deps.client, collection, call: deps.call };
  if (hits.length === 0 && (await countChunks(access, tenant)) === 0) return { hits: [], reason: 'empty-corpus' };
  return degradedReason ? { hits, degradedReason } : { hits };
}
