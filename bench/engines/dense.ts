import { documentEmbeddingText } from '../../lib/retrieval/embedder.js';
import { DenseIndex, normalised } from '../../lib/retrieval/dense-index.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import type { Dataset } from '../datasets/beir.js';
import { embedAll } from '../embeddings.js';
import type { Engine } from './engine.js';

/** Exact cosine over the documents' vectors (the query's vector from the embedding cache after the first run). */
export function denseEngine(embedder: OpenAIEmbedder, hnsw = false): Engine {
  let index: DenseIndex | undefined;
  return {
    name: hnsw ? 'dense-hnsw' : 'dense',
    async build(corpus) {
      const vectors = await embedAll(
        embedder,
        corpus.map((doc) => documentEmbeddingText(doc.title ?? '', doc.text)),
        'document',
        'documents',
      );
      // dense-hnsw: the graph the store switches to above its threshold, built over these real vectors.
      index = new DenseIndex(embedder.dimensions, { annThreshold: hnsw ? 0 : Infinity });
      corpus.forEach((doc, i) => index!.put(doc._id, vectors[i]!));
      if (hnsw) index.buildAnn();
    },
    async search(query, k) {
      const [vector] = await embedder.embed([query], 'query');
      return new Map(index!.search(vector!, k).map(({ id, score }) => [id, score]));
    },
    async dispose() {
      index = undefined;
    },
  };
}

/** The corpus's vectors in an exact DenseIndex, and every query's unit vector (all from the embedding cache). */
export async function denseSetup(
  dataset: Dataset,
  queryIds: string[],
  embedder: OpenAIEmbedder,
): Promise<{ index: DenseIndex; queryVectors: Map<string, Float32Array> }> {
  const vectors = await embedAll(
    embedder,
    dataset.corpus.map((doc) => documentEmbeddingText(doc.title ?? '', doc.text)),
    'document',
    'documents',
  );
  const index = new DenseIndex(embedder.dimensions, { annThreshold: Infinity });
  dataset.corpus.forEach((doc, i) => index.put(doc._id, vectors[i]!));
  const queryVectors = new Map<string, Float32Array>();
  for (const id of queryIds) {
    const [vector] = await embedder.embed([dataset.queries.get(id)!], 'query');
    queryVectors.set(id, normalised(vector!));
  }
  return { index, queryVectors };
}
