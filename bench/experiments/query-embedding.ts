import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { median, round } from './figures.js';

/** What a hybrid query adds over a lexical one: embedding the query, measured without the cache. */
export async function queryEmbeddingLatency(embedder: OpenAIEmbedder, queries: string[]): Promise<void> {
  const timings: number[] = [];
  for (const query of queries) {
    const started = performance.now();
    await embedder.embed([query], 'query');
    timings.push(performance.now() - started);
  }
  console.log(`query embedding: p50 ${round(median(timings), 1)} ms over ${timings.length} uncached queries`);
}
