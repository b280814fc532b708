import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { DEFAULT_FUSION } from '../../lib/retrieval/fusion.js';
import { evaluateQuery } from '../../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { toDocument, type Dataset } from '../datasets/beir.js';
import { denseSetup } from '../engines/dense.js';
import { meanOver, tuneByCrossValidation } from './cross-validation.js';

/**
 * Weighted z-score fusion where a candidate missing from one leg's top 100 gets its true score in that leg (its
 * cosine, or its BM25F over every matching document) instead of the leg's floor; each leg's mean and deviation still
 * come from its top 100, as in the store. The floor ranks a document the dense leg placed 101st like one it placed
 * last; filling removes that cliff (Bruch et al. TOIS 2023 discuss the same gap).
 */
export async function crossValidateFilledFusion(
  dataset: Dataset,
  queryIds: string[],
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const legs = new Map<string, { lexicalAll: Map<string, number>; denseAll: Map<string, number> }>();
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const id of queryIds) {
      const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: dataset.corpus.length });
      const lexicalAll = new Map(hits.map((hit) => [hit.docId, hit.score]));
      const denseAll = new Map(
        index.searchExact(queryVectors.get(id)!, dataset.corpus.length).map(({ id: docId, score }) => [docId, score]),
      );
      legs.set(id, { lexicalAll, denseAll });
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  const stats = (all: Map<string, number>) => {
    const top = [...all.values()].sort((x, y) => y - x).slice(0, depth);
    const mean = top.reduce((x, y) => x + y, 0) / top.length;
    const sd = Math.sqrt(top.reduce((x, y) => x + (y - mean) ** 2, 0) / top.length) || 1;
    return { mean, sd, floor: Math.min((top[top.length - 1]! - mean) / sd, 0), cut: top[top.length - 1]! };
  };
  const configs = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6].flatMap((denseWeight) =>
    (['floor', 'fill'] as const).map((mode) => ({ denseWeight, mode })),
  );
  const describe = (c: (typeof configs)[number]) => `${c.mode} w=${c.denseWeight}`;
  const perConfig = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    for (const id of queryIds) {
      const { lexicalAll, denseAll } = legs.get(id)!;
      const lex = stats(lexicalAll);
      const den = stats(denseAll);
      const inTop = (all: Map<string, number>, cut: number, docId: string) => (all.get(docId) ?? -Infinity) >= cut;
      const candidates = new Set<string>();
      for (const [docId, score] of lexicalAll) if (score >= lex.cut) candidates.add(docId);
      for (const [docId, score] of denseAll) if (score >= den.cut) candidates.add(docId);
      const run = new Map<string, number>();
      for (const docId of candidates) {
        const z = (all: Map<string, number>, s: ReturnType<typeof stats>) =>
          config.mode === 'fill' || inTop(all, s.cut, docId)
            ? all.has(docId)
              ? (all.get(docId)! - s.mean) / s.sd
              : s.floor
            : s.floor;
        run.set(docId, (1 - config.denseWeight) * z(lexicalAll, lex) + config.denseWeight * z(denseAll, den));
      }
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    perConfig.set(describe(config), scores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `filled fusion by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  tuneByCrossValidation('cv filled fusion', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
  tuneByCrossValidation(
    'cv filled fusion (fill only)',
    configs.filter((c) => c.mode === 'fill'),
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
}
