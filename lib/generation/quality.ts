import type { Analyzer } from '../retrieval/analyzer.js';

/**
 * A 0..1 estimate of how well an answer is grounded, from signals available without a judge model:
 * - coverage: share of the question's terms found in the sources the answer cites (all retrieved, if uncited);
 * - focus: share found in the single best source;
 * - citation: whether the answer cites at least one existing source.
 * Weighted 0.5 / 0.3 / 0.2, so an uncited answer is at best "good" and an unrelated one "poor".
 */
export function answerQuality(
  analyzer: Analyzer,
  input: { query: string; sources: Array<{ n: number; text: string }>; citations: number[] },
): number {
  const queryTerms = new Set(analyzer.analyze(input.query));
  if (queryTerms.size === 0 || input.sources.length === 0) return 0;
  // By citation number, not position: a retrieved chunk that has since gone missing leaves a gap in the numbers.
  const termsByNumber = new Map(input.sources.map((s) => [s.n, new Set(analyzer.analyze(s.text))]));
  const termSets = [...termsByNumber.values()];
  const cited = input.citations.map((n) => termsByNumber.get(n)).filter((s): s is Set<string> => s !== undefined);
  const used = cited.length > 0 ? cited : termSets;
  const share = (sets: Set<string>[]) => {
    let found = 0;
    for (const term of queryTerms) if (sets.some((s) => s.has(term))) found += 1;
    return found / queryTerms.size;
  };
  const coverage = share(used);
  const focus = Math.max(...termSets.map((s) => share([s])));
  const score = 0.5 * coverage + 0.3 * focus + 0.2 * (cited.length > 0 ? 1 : 0);
  return Math.round(score * 1000) / 1000;
}
