/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): score(d) = Σ over rankings 1 / (k + rank(d)),
 * rank 1-based. It needs no score calibration between a BM25 and a cosine ranking, which is why hybrid search
 * uses it.
 *
 * k: 60, the value of the original paper and Qdrant's and Elasticsearch's default. A smaller k lets the very top
 * of one list dominate; a larger k flattens towards counting votes. On the sample corpus with e5-small, k from 1 to
 * 100 moved nDCG@5 only between 0.866 and 0.875 (lib/retrieval/README.md), so the conventional value stays.
 */
export const DEFAULT_RRF_K = 60;

export interface Ranked {
  id: string;
}

export interface FusedResult {
  id: string;
  score: number;
}

/** Fuses rankings (each best first) into one, best first; ties go to the id seen first. */
export function reciprocalRankFusion(rankings: Ranked[][], k: number = DEFAULT_RRF_K, limit?: number): FusedResult[] {
  if (!(k >= 0)) throw new RangeError(`RRF k must be a non-negative number, got ${k}`);
  const scores = new Map<string, number>();
  for (const ranking of rankings) {
    const seen = new Set<string>();
    ranking.forEach(({ id }, index) => {
      // A list that repeats an id counts it once, at its best rank.
      if (seen.has(id)) return;
      seen.add(id);
      scores.set(id, (scores.get(id) ?? 0) + 1 / (k + index + 1));
    });
  }
  const fused = [...scores.entries()].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
  return limit === undefined ? fused : fused.slice(0, limit);
}

export interface Scored {
  id: string;
  score: number;
}

export type ScoreNormalisation = 'min-max' | 'z-score';

/**
 * Convex combination of normalised scores: (1 - w)·lexical + w·dense. Unlike RRF it keeps how far apart the scores
 * are, which helps when one leg is confident and the other is not (Bruch, Gai & Ingber, "An Analysis of Fusion
 * Functions for Hybrid Retrieval", TOIS 2023).
 *
 * `min-max` maps each list onto [0, 1]; `z-score` onto standard deviations from its mean, so one outlying top
 * score does not squash the rest of its list (Qdrant's DBSF is the same idea, clipped at ±3σ). An id missing from
 * a list scores that list's lowest value there (0 after min-max).
 */
export function weightedScoreFusion(
  lexical: Scored[],
  dense: Scored[],
  denseWeight: number,
  limit?: number,
  normalisation: ScoreNormalisation = 'min-max',
): FusedResult[] {
  if (!(denseWeight >= 0 && denseWeight <= 1))
    throw new RangeError(`dense weight must be in [0, 1], got ${denseWeight}`);
  return fuseWeightedLegs(
    [
      { list: lexical, weight: 1 - denseWeight },
      { list: dense, weight: denseWeight },
    ],
    normalisation,
    limit,
  );
}

/** The same over any number of weighted lists (the benches fuse more than two legs). */
export function fuseWeightedLegs(
  legs: { list: Scored[]; weight: number }[],
  normalisation: ScoreNormalisation,
  limit?: number,
): FusedResult[] {
  const normalisedLegs = legs.map(({ list, weight }) => ({ scores: normalised(list, normalisation), weight }));
  const fused = new Map<string, number>();
  for (const { scores } of normalisedLegs) for (const id of scores.values.keys()) fused.set(id, 0);
  for (const { scores, weight } of normalisedLegs) {
    if (scores.values.size === 0) continue;
    for (const id of fused.keys()) fused.set(id, fused.get(id)! + weight * (scores.values.get(id) ?? scores.floor));
  }
  const ranked = [...fused.entries()].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
  return limit === undefined ? ranked : ranked.slice(0, limit);
}

/** Each id's normalised score (its best, if listed twice) and the value an unlisted id gets. */
function normalised(list: Scored[], normalisation: ScoreNormalisation): { values: Map<string, number>; floor: number } {
  const values = new Map<string, number>();
  if (list.length === 0) return { values, floor: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (const { score } of list) {
    min = Math.min(min, score);
    max = Math.max(max, score);
    sum += score;
  }
  let scale: (score: number) => number;
  if (normalisation === 'z-score') {
    const mean = sum / list.length;
    let squares = 0;
    for (const { score } of list) squares += (score - mean) ** 2;
    const sd = Math.sqrt(squares / list.length);
    // A list of one, or of equal scores, carries no spread: each of its entries counts as one deviation up.
    scale = sd > 0 ? (score) => (score - mean) / sd : () => 1;
  } else {
    const span = max - min;
    // Same for min-max: each entry counts fully.
    scale = span > 0 ? (score) => (score - min) / span : () => 1;
  }
  for (const { id, score } of list) {
    const value = scale(score);
    if (!values.has(id) || values.get(id)! < value) values.set(id, value);
  }
  return { values, floor: Math.min(scale(min), 0) };
}

export type FusionKind = 'rrf' | 'weighted';

/** How a lexical and a dense ranking become one. Defaults measured on SciFact by two-fold CV (README.md). */
export interface FusionParams {
  kind: FusionKind;
  /** RRF's k. */
  rrfK: number;
  /** Weight of the dense leg in weighted fusion, in [0, 1]. */
  denseWeight: number;
  /** How weighted fusion puts both legs' scores on one scale. */
  normalisation: ScoreNormalisation;
  /** Candidates each leg contributes before fusing (at least topK). */
  depth: number;
}

/**
 * Equal weights over z-scores: on the sample corpus (where e5-small beats BM25F) and on SciFact documents (where
 * BM25F beats it) alike within ~0.01 of each corpus's own best fusion, where min-max at the sample's best weight
 * (0.7) lost 0.06 on SciFact (lib/retrieval/README.md).
 */
export const DEFAULT_FUSION: FusionParams = {
  kind: 'weighted',
  rrfK: DEFAULT_RRF_K,
  denseWeight: 0.5,
  normalisation: 'z-score',
  depth: 100,
};

/** Fuses a lexical and a dense ranking (each best first) by `params`. */
export function fuseHybrid(lexical: Scored[], dense: Scored[], params: FusionParams, limit: number): FusedResult[] {
  return params.kind === 'rrf'
    ? reciprocalRankFusion([lexical, dense], params.rrfK, limit)
    : weightedScoreFusion(lexical, dense, params.denseWeight, limit, params.normalisation);
}
