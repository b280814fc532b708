/**
 * Ranking metrics with trec_eval semantics, so our figures compare with published BEIR/Anserini numbers:
 * a run is ranked by score descending with ties broken by document id descending (trec_eval's order); gains are
 * the linear qrel values; the ideal DCG uses every judged relevant document (rel > 0); every query in the qrels
 * counts in the mean, scoring 0 when it has no relevant document or is missing from the run (`trec_eval -c`).
 */

/** query id → document id → relevance grade. */
export type Qrels = Map<string, Map<string, number>>;
/** query id → document id → retrieval score. */
export type Run = Map<string, Map<string, number>>;

export interface QueryMetrics {
  ndcg: number;
  /** Reciprocal rank of the first relevant document within the cut-off. */
  mrr: number;
  recall: number;
  precision: number;
  f1: number;
}

export interface Evaluation {
  k: number;
  queries: number;
  mean: QueryMetrics;
  perQuery: Map<string, QueryMetrics>;
}

/** Document ids of one query's results in trec_eval order. */
export function rankDocuments(scores: Map<string, number>): string[] {
  return [...scores.entries()]
    .sort(([docA, scoreA], [docB, scoreB]) => scoreB - scoreA || (docA < docB ? 1 : docA > docB ? -1 : 0))
    .map(([docId]) => docId);
}

export function evaluateQuery(judgements: Map<string, number>, scores: Map<string, number> | undefined, k: number) {
  const ranked = scores ? rankDocuments(scores).slice(0, k) : [];
  const relevantTotal = [...judgements.values()].filter((rel) => rel > 0).length;
  let dcg = 0;
  let hits = 0;
  let mrr = 0;
  ranked.forEach((docId, rank) => {
    const rel = judgements.get(docId) ?? 0;
    if (rel <= 0) return;
    dcg += rel / Math.log2(rank + 2);
    hits++;
    if (mrr === 0) mrr = 1 / (rank + 1);
  });
  const ideal = [...judgements.values()]
    .filter((rel) => rel > 0)
    .sort((a, b) => b - a)
    .slice(0, k)
    .reduce((sum, rel, rank) => sum + rel / Math.log2(rank + 2), 0);
  const recall = relevantTotal === 0 ? 0 : hits / relevantTotal;
  const precision = hits / k;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { ndcg: ideal === 0 ? 0 : dcg / ideal, mrr, recall, precision, f1 } satisfies QueryMetrics;
}

/** Metrics at cut-off `k` for every query in the qrels, and their means. */
export function evaluate(qrels: Qrels, run: Run, k: number): Evaluation {
  const perQuery = new Map<string, QueryMetrics>();
  const sum: QueryMetrics = { ndcg: 0, mrr: 0, recall: 0, precision: 0, f1: 0 };
  for (const [queryId, judgements] of qrels) {
    const metrics = evaluateQuery(judgements, run.get(queryId), k);
    perQuery.set(queryId, metrics);
    for (const key of Object.keys(sum) as (keyof QueryMetrics)[]) sum[key] += metrics[key];
  }
  const n = Math.max(qrels.size, 1);
  const mean: QueryMetrics = {
    ndcg: sum.ndcg / n,
    mrr: sum.mrr / n,
    recall: sum.recall / n,
    precision: sum.precision / n,
    f1: sum.f1 / n,
  };
  return { k, queries: qrels.size, mean, perQuery };
}
