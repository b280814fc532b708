/**
 * Scores of an evaluation batch. Pure and deterministic, with no runtime dependencies, so the evaluation workflow,
 * the CLI, the benchmark and the improvement loop all compute the same figures from the same observations.
 */
import { evaluateQuery } from '../retrieval/ir-metrics.js';

/** What one question of a batch produced, reduced to what scoring needs. */
export interface EvalObservation {
  itemId: string;
  /** Id of the query workflow that answered it, to inspect in the Temporal UI. */
  queryId?: string;
  /** Document ids of the answer's sources in rank order (a document's first chunk counts; later ones are dropped). */
  rankedDocIds: string[];
  relevant: Record<string, number>;
  /** Document ids of the sources the answer cites. */
  citedDocIds: string[];
  degraded: boolean;
  latencyMs: number;
  /** The query failed outright (no answer at all): it scores 0 everywhere and counts as degraded. */
  error?: string;
}

export interface RankingScores {
  /** Precision, recall and F1 at the batch's cut-off k. */
  precision: number;
  recall: number;
  f1: number;
  mrr10: number;
  ndcg10: number;
  recall10: number;
}

export interface EvalScores extends RankingScores {
  k: number;
  samples: number;
  errors: number;
  /** Mean over questions that cite anything of the share of cited documents that are relevant. */
  citedRelevantShare: number;
  nonDegradedShare: number;
  citationsPresentShare: number;
  degradedShare: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
  /** {@link QUALITY_WEIGHTS}-weighted mean of the scores above, in [0, 1]. */
  quality: number;
}

/**
 * The single quality figure: mostly ranking (nDCG@10 and recall@k, what retrieval changes move), then whether the
 * answer cites relevant documents at all, then whether it came back whole. Weights sum to 1, every part is in
 * [0, 1], so quality is too; a batch that fails entirely scores 0.
 */
export const QUALITY_WEIGHTS = {
  ndcg10: 0.4,
  recall: 0.2,
  citedRelevantShare: 0.2,
  citationsPresentShare: 0.1,
  nonDegradedShare: 0.1,
} as const;

/** P/R/F1 at `k`, MRR@10, nDCG@10 and recall@10 of one ranking, with trec_eval semantics (ir-metrics.ts). */
export function scoreRanking(rankedDocIds: string[], relevant: Record<string, number>, k: number): RankingScores {
  const judgements = new Map(Object.entries(relevant));
  const unique = [...new Set(rankedDocIds)];
  // Strictly decreasing scores keep our order under trec_eval's sort (ties would be broken by document id).
  const scores = new Map(unique.map((docId, rank) => [docId, unique.length - rank]));
  const atK = evaluateQuery(judgements, scores, k);
  const at10 = k === 10 ? atK : evaluateQuery(judgements, scores, 10);
  return {
    precision: atK.precision,
    recall: atK.recall,
    f1: atK.f1,
    mrr10: at10.mrr,
    ndcg10: at10.ndcg,
    recall10: at10.recall,
  };
}

/** Nearest-rank percentile of `values` (0 for none). */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1]!;
}

const mean = (values: number[]) => (values.length === 0 ? 0 : values.reduce((s, v) => s + v, 0) / values.length);

export function aggregateScores(observations: EvalObservation[], k: number): EvalScores {
  const rankings = observations.map((o) =>
    o.error ? scoreRanking([], o.relevant, k) : scoreRanking(o.rankedDocIds, o.relevant, k),
  );
  const meanOf = (key: keyof RankingScores) => mean(rankings.map((r) => r[key]));
  const citing = observations.filter((o) => !o.error && o.citedDocIds.length > 0);
  const citedRelevantShare = mean(
    citing.map((o) => {
      const cited = [...new Set(o.citedDocIds)];
      return cited.filter((docId) => (o.relevant[docId] ?? 0) > 0).length / cited.length;
    }),
  );
  const n = observations.length;
  const share = (count: number) => (n === 0 ? 0 : count / n);
  const nonDegradedShare = share(observations.filter((o) => !o.error && !o.degraded).length);
  const citationsPresentShare = share(citing.length);
  const latencies = observations.filter((o) => !o.error).map((o) => o.latencyMs);
  const scores = {
    k,
    samples: n,
    errors: observations.filter((o) => o.error).length,
    precision: meanOf('precision'),
    recall: meanOf('recall'),
    f1: meanOf('f1'),
    mrr10: meanOf('mrr10'),
    ndcg10: meanOf('ndcg10'),
    recall10: meanOf('recall10'),
    citedRelevantShare,
    nonDegradedShare,
    citationsPresentShare,
    degradedShare: n === 0 ? 0 : 1 - nonDegradedShare,
    latencyP50Ms: percentile(latencies, 50),
    latencyP95Ms: percentile(latencies, 95),
  };
  const quality =
    n === 0
      ? 0
      : (Object.keys(QUALITY_WEIGHTS) as Array<keyof typeof QUALITY_WEIGHTS>).reduce(
          (sum, key) => sum + QUALITY_WEIGHTS[key] * scores[key],
          0,
        );
  return { ...scores, quality: Math.min(1, Math.max(0, quality)) };
}

/**
 * One question's quality with the {@link QUALITY_WEIGHTS}: its nDCG@10 and recall@k, the share of its cited documents
 * that are relevant (0 without citations), whether it cites at all, and whether it came back whole. The paired
 * comparison of the evaluation alerts compares it with the same question's score in healthy batches.
 */
export function itemQuality(observation: EvalObservation, k: number): number {
  if (observation.error) return 0;
  const ranking = scoreRanking(observation.rankedDocIds, observation.relevant, k);
  const cited = [...new Set(observation.citedDocIds)];
  const citedRelevant =
    cited.length === 0 ? 0 : cited.filter((docId) => (observation.relevant[docId] ?? 0) > 0).length / cited.length;
  return (
    QUALITY_WEIGHTS.ndcg10 * ranking.ndcg10 +
    QUALITY_WEIGHTS.recall * ranking.recall +
    QUALITY_WEIGHTS.citedRelevantShare * citedRelevant +
    QUALITY_WEIGHTS.citationsPresentShare * (cited.length > 0 ? 1 : 0) +
    QUALITY_WEIGHTS.nonDegradedShare * (observation.degraded ? 0 : 1)
  );
}
