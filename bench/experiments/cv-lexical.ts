import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { evaluateQuery } from '../../lib/retrieval/ir-metrics.js';
import { toDocument, type Dataset } from '../datasets/beir.js';
import { tuneByCrossValidation } from './cross-validation.js';

/**
 * Re-checks the BM25F defaults: a grid around them over one index, each configuration passed per search as the
 * improvement loop's shadow evaluation does (title b stays at its default 0.75, within noise in the tuning log).
 */
export async function crossValidateLexical(dataset: Dataset, queryIds: string[]): Promise<void> {
  const configs: { k1: number; b: number; titleWeight: number }[] = [];
  for (const k1 of [0.9, 1.2, 1.5, 2]) {
    for (const b of [0.6, 0.75, 0.9]) for (const titleWeight of [1, 2, 3, 4]) configs.push({ k1, b, titleWeight });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const perConfig = new Map<string, Map<string, number>>();
  const describe = (bm25: (typeof configs)[number]) => JSON.stringify(bm25);
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const bm25 of configs) {
      const scores = new Map<string, number>();
      for (const id of queryIds) {
        const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: 100, bm25 });
        const run = new Map(hits.map((hit) => [hit.docId, hit.score]));
        scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
      }
      perConfig.set(describe(bm25), scores);
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  tuneByCrossValidation('cv lexical bm25', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
}
