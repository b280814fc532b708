import type { Config } from '../config.js';
import type { ChunkStore } from '../domain.js';
import type { Analyzer } from './analyzer.js';
import { EmbeddedStore } from './embedded-store.js';
import type { Embedder } from './embedder.js';
import { QdrantStore } from './qdrant-store.js';

export { Analyzer, ENGLISH_STOP_WORDS } from './analyzer.js';
export { EmbeddedStore, validateDocument, DEFAULT_BM25, DEFAULT_FEEDBACK } from './embedded-store.js';
export type { EmbeddedStoreOptions } from './embedded-store.js';
export type { Embedder, EmbeddingCache, EmbeddingCacheKey } from './embedder.js';
export { OpenAIEmbedder, openAIEmbedderFromConfig } from './openai-embedder.js';
export { reciprocalRankFusion, DEFAULT_RRF_K } from './fusion.js';
export { QdrantStore } from './qdrant-store.js';
export { evaluate, evaluateQuery, rankDocuments } from './ir-metrics.js';

export interface ChunkStoreDeps {
  /** Dense vectors for Qdrant's hybrid search; the embedded store is lexical only and ignores it. */
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
      },
      { analyzer: deps.analyzer },
    );
    await store.verifyLayout();
    return store;
  }
  return EmbeddedStore.open(config.RAGLINE_DATA_DIR, deps.analyzer ? { analyzer: deps.analyzer } : {});
}
