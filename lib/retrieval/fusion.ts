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

/**
 * Convex combination of min-max normalised scores: (1 - w)·lexical + w·dense, an id missing from a list scoring 0
 * there. Unlike RRF it keeps how far apart the scores are, which helps when one leg is confident and the other
 * is not (Bruch, Gai & Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023).
 */
export function weightedScoreFusion(
  lexical: Scored[],
  dense: Scored[],
  denseWeight: number,
  limit?: number,
): FusedResult[] {
  if (!(denseWeight >= 0 && denseWeight <= 1))
    throw new RangeError(`dense weight must be in [0, 1], got ${denseWeight}`);
  const scores = new Map<string, number>();
  const add = (list: Scored[], weight: number) => {
    if (list.length === 0) return;
    let min = Infinity;
    let max = -Infinity;
    for (const { score } of list) {
      min = Math.min(min, score);
      max = Math.max(max, score);
    }
    const span = max - min;
    const seen = new Set<string>();
    for (const { id, score } of list) {
      if (seen.has(id)) continue;
      seen.add(id);
      // A list of one, or of equal scores, carries no spread: each of its entries counts fully.
      const normalisedScore = span > 0 ? (score - min) / span : 1;
      scores.set(id, (scores.get(id) ?? 0) + weight * normalisedScore);
    }
  };
  add(lexical, 1 - denseWeight);
  add(dense, denseWeight);
  const fused = [...scores.entries()].map(([id, score]) => ({ id, score })).sort((a, b) => b.score - a.score);
  return limit === undefined ? fused : fused.slice(0, limit);
}

export type FusionKind = 'rrf' | 'weighted';

/** How a lexical and a dense ranking become one. Defaults measured on SciFact by two-fold CV (README.md). */
export interface FusionParams {
  kind: FusionKind;
  /** RRF's k. */
  rrfK: number;
  /** Weight of the dense leg in weighted fusion, in [0, 1]. */
  denseWeight: number;
  /** Candidates each leg contributes before fusing (at least topK). */
  depth: number;
}

export const DEFAULT_FUSION: FusionParams = { kind: 'weighted', rrfK: DEFAULT_RRF_K, denseWeight: 0.7, depth: 100 };

/** Fuses a lexical and a dense ranking (each best first) by `params`. */
export function fuseHybrid(lexical: Scored[], dense: Scored[], params: FusionParams, limit: number): FusedResult[] {
  return params.kind === 'rrf'
    ? reciprocalRankFusion([lexical, dense], params.rrfK, limit)
    : weightedScoreFusion(lexical, dense, params.denseWeight, limit);
}
