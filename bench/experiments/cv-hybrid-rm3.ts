import type { EmbeddedStoreOptions } from '../../lib/retrieval/embedded-store.js';
import { DEFAULT_FUSION, fuseHybrid } from '../../lib/retrieval/fusion.js';
import { evaluateQuery } from '../../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import type { Dataset } from '../datasets/beir.js';
import { denseSetup } from '../engines/dense.js';
import { raglineEngine } from '../engines/ragline.js';
import { pairedDifference, tuneByCrossValidation } from './cross-validation.js';
import { rankedList, round } from './figures.js';

/**
 * RM3 on the lexical leg of the hybrid: alone it always lost to plain BM25F here (README), but the dense leg may
 * absorb its drift while its expansion terms add recall. Each configuration builds its own lexical index.
 */
export async function crossValidateHybridRm3(
  dataset: Dataset,
  queryIds: string[],
  options: EmbeddedStoreOptions,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const denseLists = new Map(queryIds.map((id) => [id, index.searchExact(queryVectors.get(id)!, depth)]));
  const configs = [
    { docs: 0, terms: 0, originalWeight: 1 },
    ...[3, 5, 10].flatMap((docs) =>
      [10, 20].flatMap((terms) => [0.5, 0.7, 0.85].map((originalWeight) => ({ docs, terms, originalWeight }))),
    ),
  ];
  const describe = (c: (typeof configs)[number]) => (c.docs === 0 ? 'no rm3' : JSON.stringify(c));
  const perConfig = new Map<string, Map<string, number>>();
  const lines: string[] = [];
  for (const feedback of configs) {
    const engine = raglineEngine({ ...options, feedback }, 'rm3');
    await engine.build(dataset.corpus);
    const hybrid = new Map<string, number>();
    let lexicalSum = 0;
    for (const id of queryIds) {
      const lexical = await engine.search(dataset.queries.get(id)!, depth);
      lexicalSum += evaluateQuery(dataset.qrels.get(id)!, lexical, 10).ndcg;
      const fused = fuseHybrid(rankedList(lexical, depth), denseLists.get(id)!, DEFAULT_FUSION, 100);
      const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
      hybrid.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    await engine.dispose();
    perConfig.set(describe(feedback), hybrid);
    const all = [...hybrid.values()].reduce((x, y) => x + y, 0) / queryIds.length;
    lines.push(`${describe(feedback)} lexical ${round(lexicalSum / queryIds.length)} hybrid ${round(all)}`);
  }
  console.log(`hybrid rm3 by config: ${lines.join('; ')}`);
  const chosen = tuneByCrossValidation(
    'cv hybrid rm3',
    configs,
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
  pairedDifference(
    `${chosen.fullConfig} vs no rm3`,
    perConfig.get(chosen.fullConfig)!,
    perConfig.get('no rm3')!,
    queryIds,
  );
}
