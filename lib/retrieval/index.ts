import type { Config } from '../config.js';
import type { ChunkStore } from '../domain.js';
import type { Analyzer } from './analyzer.js';
import { EmbeddedStore } from './embedded-store.js';
import type { Embedder } from './embedder.js';
import { QdrantStore } from './qdrant-store.js';

// The store's composition: what the worker uses. Everything else is imported from its own module.
export type { Analyzer } from './analyzer.js';
export type { Embedder, EmbeddingCache } from './embedder.js';
export { DiskEmbeddingCache } from './disk-embedding-cache.js';
export { openAIEmbedderFromConfig } from './openai-embedder.js';

export interface ChunkStoreDeps {
  /** Dense vectors for hybrid search, in Qdrant and in the embedded store alike. */
  embedder?: Embedder;
  analyzer?: Analyzer;
}

/**
 * The configured ChunkStore: Qdrant when QDRANT_URL is set, otherwise the embedded index under
 * `<RAGLINE_DATA_DIR>/index`. Called once, at the composition root; the caller closes it.
 */
export async function createChunkStore(config: Config, deps: ChunkStoreDeps = {}): Promise<ChunkStore> {
  if (config.QDRANT_URL !== undefined) {
    const store = new QdrantStore(
      {
        url: config.QDRANT_URL,
        apiKey: config.QDRANT_API_KEY,
        collection: config.QDRANT_COLLECTION,
        embedder: deps.embedder,
        rrfK: config.RAGLINE_RRF_K,
      },
      { analyzer: deps.analyzer },
    );
    await store.verifyLayout();
    return store;
  }
  return EmbeddedStore.open(config.RAGLINE_DATA_DIR, {
    ...(deps.analyzer ? { analyzer: deps.analyzer } : {}),
    ...(deps.embedder ? { embedder: deps.embedder } : {}),
    fusion: {
      kind: config.RAGLINE_FUSION,
      rrfK: config.RAGLINE_RRF_K,
      denseWeight: config.RAGLINE_FUSION_DENSE_WEIGHT,
      normalisation: config.RAGLINE_FUSION_NORMALISATION,
      depth: config.RAGLINE_FUSION_DEPTH,
    },
    dense: { annThreshold: config.RAGLINE_DENSE_ANN_THRESHOLD, expansionSearch: config.RAGLINE_DENSE_ANN_SEARCH_LIST },
  });
}
