import { DEFAULT_FUSION, fuseHybrid, type FusionParams } from '../../lib/retrieval/fusion.js';
import { evaluateQuery, type Qrels, type Run } from '../../lib/retrieval/ir-metrics.js';
import { folds, meanOver, tuneByCrossValidation } from './cross-validation.js';
import { round } from './figures.js';

/** `--cv`: the fusion's kind, parameter and depth over the ragline (lexical) and dense runs. */
export function crossValidateFusion(qrels: Qrels, queryIds: string[], lexical: Run, dense: Run): void {
  const ranked = (scores: Map<string, number> | undefined) =>
    [...(scores ?? new Map<string, number>()).entries()]
      .map(([id, score]) => ({ id, score }))
      .sort((x, y) => y.score - x.score);
  const lists = new Map(queryIds.map((id) => [id, { lexical: ranked(lexical.get(id)), dense: ranked(dense.get(id)) }]));
  const perQuery = (params: FusionParams) =>
    new Map(
      queryIds.map((id) => {
        const { lexical: lex, dense: den } = lists.get(id)!;
        const fused = fuseHybrid(lex.slice(0, params.depth), den.slice(0, params.depth), params, 100);
        const scores = new Map(fused.map(({ id: docId, score }) => [docId, score]));
        return [id, evaluateQuery(qrels.get(id)!, scores, 10).ndcg];
      }),
    );
  const rrf = [1, 5, 10, 20, 30, 40, 60, 80, 100].map((rrfK): FusionParams => ({
    ...DEFAULT_FUSION,
    kind: 'rrf',
    rrfK,
  }));
  const weighted = Array.from({ length: 19 }, (_, i): FusionParams => ({
    ...DEFAULT_FUSION,
    kind: 'weighted',
    denseWeight: (i + 1) / 20,
  }));
  const describe = (p: FusionParams) =>
    (p.kind === 'rrf' ? `rrf k=${p.rrfK}` : `${p.normalisation} w=${p.denseWeight}`) +
    (p.depth === DEFAULT_FUSION.depth ? '' : ` depth=${p.depth}`);
  tuneByCrossValidation('cv rrf k', rrf, describe, perQuery, queryIds);
  tuneByCrossValidation('cv weighted w', weighted, describe, perQuery, queryIds);
  tuneByCrossValidation('cv fusion (kind and parameter)', [...rrf, ...weighted], describe, perQuery, queryIds);
  const shallower = [20, 50].flatMap((depth) => [...rrf, ...weighted].map((params) => ({ ...params, depth })));
  tuneByCrossValidation(
    'cv fusion (kind, parameter and depth 20/50/100)',
    [...rrf, ...weighted, ...shallower],
    describe,
    perQuery,
    queryIds,
  );
  const zScored = weighted.map((params): FusionParams => ({ ...params, normalisation: 'z-score' }));
  const minMax = weighted.map((params): FusionParams => ({ ...params, normalisation: 'min-max' }));
  tuneByCrossValidation('cv min-max weighted w', minMax, describe, perQuery, queryIds);
  tuneByCrossValidation('cv z-score weighted w', zScored, describe, perQuery, queryIds);
  tuneByCrossValidation(
    'cv fusion (rrf k, min-max or z-score w)',
    [...rrf, ...minMax, ...zScored],
    describe,
    perQuery,
    queryIds,
  );
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(`min-max by w: ${minMax.map((p) => `${p.denseWeight} ${all(perQuery(p))}`).join(', ')}`);
  console.log(`z-score by w: ${zScored.map((p) => `${p.denseWeight} ${all(perQuery(p))}`).join(', ')}`);
  const previousDefault: FusionParams = { ...DEFAULT_FUSION, denseWeight: 0.7, normalisation: 'min-max' };
  for (const params of [{ ...DEFAULT_FUSION, kind: 'rrf' as const }, DEFAULT_FUSION, previousDefault]) {
    const scores = perQuery(params);
    const [a, b] = folds(queryIds);
    const mean = (ids: string[]) => ids.reduce((sum, id) => sum + scores.get(id)!, 0) / ids.length;
    console.log(
      `fixed ${describe(params)}: all ${round(mean(queryIds))}, fold A ${round(mean(a))}, fold B ${round(mean(b))}`,
    );
  }
}
