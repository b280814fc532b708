/** Two-fold cross-validation over judged queries, shared by the `--cv*` experiments. */
import { round } from './figures.js';

/** Mean per-query figure over `ids`, rounded as the bench prints it. */
export function meanOver(scores: Map<string, number>, ids: string[]): number {
  return round(ids.reduce((x, id) => x + scores.get(id)!, 0) / ids.length);
}

/** One configuration's mean over all queries and over each fold. */
export function logFolds(label: string, scores: Map<string, number>, queryIds: string[]): void {
  const [a, b] = folds(queryIds);
  console.log(
    `${label}: all ${meanOver(scores, queryIds)}, fold A ${meanOver(scores, a)}, fold B ${meanOver(scores, b)}`,
  );
}

/** Two folds by alternating sorted query ids: deterministic, and both halves span the id range. */
export function folds(queryIds: string[]): [string[], string[]] {
  const sorted = [...queryIds].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  return [sorted.filter((_, i) => i % 2 === 0), sorted.filter((_, i) => i % 2 === 1)];
}

/**
 * Picks the configuration with the best mean nDCG@10 on one fold and scores it on the other, both ways. The
 * cross-validated figure is the mean over all queries of their held-out scores; the full-split figure is the best
 * configuration chosen and scored on all queries, which is optimistic by construction.
 */
export function tuneByCrossValidation<C>(
  label: string,
  configs: C[],
  describe: (config: C) => string,
  perQuery: (config: C) => Map<string, number>,
  queryIds: string[],
): { cv: number; full: number; fullConfig: string; foldConfigs: string[] } {
  const table = configs.map((config) => ({ config, scores: perQuery(config) }));
  const mean = (scores: Map<string, number>, ids: string[]) =>
    ids.reduce((sum, id) => sum + (scores.get(id) ?? 0), 0) / ids.length;
  const best = (ids: string[]) =>
    table.reduce((winner, row) => (mean(row.scores, ids) > mean(winner.scores, ids) ? row : winner));
  const [a, b] = folds(queryIds);
  const onA = best(a);
  const onB = best(b);
  const cv = (mean(onA.scores, b) * b.length + mean(onB.scores, a) * a.length) / queryIds.length;
  const full = best(queryIds);
  const result = {
    cv: round(cv),
    full: round(mean(full.scores, queryIds)),
    fullConfig: describe(full.config),
    foldConfigs: [describe(onA.config), describe(onB.config)],
  };
  console.log(`${label}: ${JSON.stringify(result)}`);
  return result;
}

/** Mean per-query nDCG@10 difference of two configurations, per fold, with its paired t statistic. */
export function pairedDifference(
  label: string,
  a: Map<string, number>,
  b: Map<string, number>,
  queryIds: string[],
): void {
  const diff = (ids: string[]) => ids.map((id) => a.get(id)! - b.get(id)!);
  const mean = (values: number[]) => values.reduce((x, y) => x + y, 0) / values.length;
  const all = diff(queryIds);
  const sd = Math.sqrt(all.reduce((x, d) => x + (d - mean(all)) ** 2, 0) / (all.length - 1));
  const [foldA, foldB] = folds(queryIds);
  console.log(
    `${label}: mean difference ${round(mean(all), 4)} (fold A ${round(mean(diff(foldA)), 4)}, fold B ` +
      `${round(mean(diff(foldB)), 4)}), paired t ${round(mean(all) / (sd / Math.sqrt(all.length)), 2)}, ` +
      `${all.filter((d) => d > 0).length} queries up, ${all.filter((d) => d < 0).length} down`,
  );
}
