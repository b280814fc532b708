import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { DEFAULT_FUSION, fuseHybrid } from '../../lib/retrieval/fusion.js';
import { evaluateQuery } from '../../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { toDocument, type Dataset } from '../datasets/beir.js';
import { denseSetup } from '../engines/dense.js';
import { pairedDifference, tuneByCrossValidation } from './cross-validation.js';

/**
 * BM25F's k1, b and title weight chosen together with the z-score fusion weight: the lexical settings that suit
 * BM25F alone need not suit it as one leg of two (a leg whose misses the other covers may do better more precise).
 * One lexical index, each BM25F configuration passed per search as crossValidateLexical does.
 */
export async function crossValidateJoint(
  dataset: Dataset,
  queryIds: string[],
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const denseLists = new Map(queryIds.map((id) => [id, index.searchExact(queryVectors.get(id)!, depth)]));
  const lexicalConfigs: { k1: number; b: number; titleWeight: number }[] = [];
  for (const k1 of [0.9, 1.2, 1.5, 2]) {
    for (const b of [0.6, 0.75, 0.9])
      for (const titleWeight of [1, 2, 3, 4]) lexicalConfigs.push({ k1, b, titleWeight });
  }
  const weights = [0.3, 0.4, 0.5, 0.6];
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const perConfig = new Map<string, Map<string, number>>();
  const describe = (c: { bm25: (typeof lexicalConfigs)[number]; denseWeight: number }) =>
    `${JSON.stringify(c.bm25)} w=${c.denseWeight}`;
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const bm25 of lexicalConfigs) {
      const lexicalLists = new Map<string, { id: string; score: number }[]>();
      for (const id of queryIds) {
        const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: depth, bm25 });
        lexicalLists.set(
          id,
          hits.map((hit) => ({ id: hit.docId, score: hit.score })),
        );
      }
      for (const denseWeight of weights) {
        const scores = new Map<string, number>();
        for (const id of queryIds) {
          const params = { ...DEFAULT_FUSION, denseWeight };
          const fused = fuseHybrid(lexicalLists.get(id)!, denseLists.get(id)!, params, 100);
          const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
          scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
        }
        perConfig.set(describe({ bm25, denseWeight }), scores);
      }
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  const configs = lexicalConfigs.flatMap((bm25) => weights.map((denseWeight) => ({ bm25, denseWeight })));
  const chosen = tuneByCrossValidation(
    'cv joint bm25f + z-score w',
    configs,
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
  const defaults = describe({ bm25: { k1: 1.2, b: 0.75, titleWeight: 3 }, denseWeight: 0.5 });
  pairedDifference(
    `${chosen.fullConfig} vs defaults`,
    perConfig.get(chosen.fullConfig)!,
    perConfig.get(defaults)!,
    queryIds,
  );
}
