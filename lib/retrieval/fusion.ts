/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): score(d) = Σ over rankings 1 / (k + rank(d)),
 * rank 1-based. It needs no score calibration between a BM25 and a cosine ranking, which is why hybrid search
 * uses it.
 *
 * k: 60, the value of the original paper and Qdrant's and Elasticsearch's default. A smaller k lets the very top
 * of one list dominate; a larger k flattens towards counting votes. We cannot measure dense retrieval here (no
 * embedding model on this machine), so k is not tuned on SciFact: re-check it with `npm run bench -- retrieval`
 * once a dense leg exists.
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
