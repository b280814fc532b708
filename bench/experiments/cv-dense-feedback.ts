import { normalised } from '../../lib/retrieval/dense-index.js';
import { DEFAULT_FUSION, fuseHybrid } from '../../lib/retrieval/fusion.js';
import { evaluateQuery, type Run } from '../../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import type { Dataset } from '../datasets/beir.js';
import { denseSetup } from '../engines/dense.js';
import { logFolds, meanOver, tuneByCrossValidation } from './cross-validation.js';
import { rankedList } from './figures.js';

/**
 * Dense pseudo-relevance feedback (Rocchio): the query vector plus β × the mean vector of the top `docs` documents of
 * the default hybrid ranking, searched again and fused again with the same lexical leg. Needs no new embeddings.
 * β = 0 is the default hybrid itself, so the cross-validation can choose "no feedback"; the fusion weight is tuned
 * jointly, since a sharper dense leg may deserve more weight.
 */
export async function crossValidateDenseFeedback(
  dataset: Dataset,
  queryIds: string[],
  lexical: Run,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const lexicalLists = new Map(queryIds.map((id) => [id, rankedList(lexical.get(id), depth)]));
  const firstPass = new Map(
    queryIds.map((id) => [
      id,
      fuseHybrid(lexicalLists.get(id)!, index.searchExact(queryVectors.get(id)!, depth), DEFAULT_FUSION, depth),
    ]),
  );
  interface Feedback {
    beta: number;
    docs: number;
    denseWeight: number;
  }
  const configs: Feedback[] = [];
  for (const denseWeight of [0.4, 0.5, 0.6]) {
    configs.push({ beta: 0, docs: 0, denseWeight });
    for (const beta of [0.25, 0.5, 1, 2]) for (const docs of [3, 5, 10]) configs.push({ beta, docs, denseWeight });
  }
  const describe = (c: Feedback) => (c.beta === 0 ? `no feedback, w=${c.denseWeight}` : JSON.stringify(c));
  const perConfig = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    for (const id of queryIds) {
      const query = Float32Array.from(queryVectors.get(id)!);
      for (const { id: docId } of firstPass.get(id)!.slice(0, config.docs)) {
        const vector = index.get(docId)!;
        for (let d = 0; d < query.length; d++) query[d]! += (config.beta / config.docs) * vector[d]!;
      }
      const params = { ...DEFAULT_FUSION, denseWeight: config.denseWeight };
      const fused = fuseHybrid(lexicalLists.get(id)!, index.searchExact(normalised(query), depth), params, 100);
      const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    perConfig.set(describe(config), scores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `dense feedback by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  logFolds(
    'default hybrid',
    perConfig.get(describe({ beta: 0, docs: 0, denseWeight: DEFAULT_FUSION.denseWeight }))!,
    queryIds,
  );
  tuneByCrossValidation('cv dense feedback', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
  tuneByCrossValidation(
    'cv dense feedback (w fixed 0.5)',
    configs.filter((c) => c.denseWeight === 0.5),
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
}
