import type { ChunkStore, SearchRequest } from '../domain.js';
import type { EvalItem } from '../eval/dataset.js';
import { scoreRanking } from '../eval/scores.js';
import type { RetrievalParams } from './params.js';

/** The per-tenant parameters a store's search takes: BM25's and the hybrid fusion's. */
export function searchTuning(params: RetrievalParams): Pick<SearchRequest, 'bm25' | 'fusion'> {
  return {
    bm25: { k1: params.bm25K1, b: params.bm25B, titleWeight: params.titleWeight },
    fusion: { denseWeight: params.fusionWeight, rrfK: params.rrfK },
  };
}

/** nDCG@10 of every question of the set with these parameters: a retrieval-level evaluation, no generation. */
export async function evaluateParams(
  store: ChunkStore,
  tenant: string,
  items: EvalItem[],
  params: RetrievalParams,
): Promise<number[]> {
  const scores: number[] = [];
  for (const item of items) {
    const response = await store.search(tenant, {
      query: item.question,
      topK: params.topK,
      ...searchTuning(params),
    });
    const ranked = [...new Set(response.hits.map((hit) => hit.docId))];
    scores.push(scoreRanking(ranked, item.relevant, 10).ndcg10);
  }
  return scores;
}

export interface Comparison {
  before: number;
  after: number;
  delta: number;
  /** Two standard errors of the mean per-question difference. */
  noise: number;
}

/** Paired comparison of two per-question score lists over the same questions. */
export function compareScores(before: number[], after: number[]): Comparison {
  const n = Math.min(before.length, after.length);
  if (n === 0) return { before: 0, after: 0, delta: 0, noise: 0 };
  const diffs = Array.from({ length: n }, (_, i) => after[i]! - before[i]!);
  const meanOf = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const delta = meanOf(diffs);
  const variance = n > 1 ? diffs.reduce((sum, d) => sum + (d - delta) ** 2, 0) / (n - 1) : 0;
  return {
    before: meanOf(before.slice(0, n)),
    after: meanOf(after.slice(0, n)),
    delta,
    noise: 2 * Math.sqrt(variance / n),
  };
}

/** A candidate is worth proposing only when its gain is positive and larger than the noise. */
export function beatsNoise(comparison: Comparison): boolean {
  return comparison.delta > 1e-9 && comparison.delta > comparison.noise;
}
