import type { ForwardIndex } from './forward-index.js';
import type { FeedbackParams } from './params.js';
import type { ScoredSlot } from './top-k.js';

/**
 * RM3 pseudo-relevance feedback: mixes the query (term id → weight) with a relevance model estimated from the first
 * pass's top chunks, read from the forward index.
 */
export function expandQuery(
  forward: ForwardIndex,
  original: Map<number, number>,
  firstPass: ScoredSlot[],
  feedback: FeedbackParams,
): Map<number, number> {
  const model = new Map<number, number>();
  const scoreSum = firstPass.reduce((sum, hit) => sum + hit.score, 0);
  if (scoreSum <= 0) return original;
  for (const hit of firstPass) {
    const start = forward.start[hit.slot]!;
    const end = start + forward.count[hit.slot]!;
    const length = forward.titleLength[hit.slot]! + forward.bodyLength[hit.slot]!;
    if (length === 0) continue;
    const docWeight = hit.score / scoreSum;
    for (let i = start; i < end; i++) {
      const tf = forward.titleTf[i]! + forward.bodyTf[i]!;
      const term = forward.term[i]!;
      model.set(term, (model.get(term) ?? 0) + (docWeight * tf) / length);
    }
  }
  const expansion = [...model.entries()].sort((x, y) => y[1] - x[1]).slice(0, feedback.terms);
  const expansionSum = expansion.reduce((sum, [, weight]) => sum + weight, 0);
  let originalSum = 0;
  for (const weight of original.values()) originalSum += weight;
  const mixed = new Map<number, number>();
  for (const [term, weight] of original) mixed.set(term, (feedback.originalWeight * weight) / originalSum);
  for (const [term, weight] of expansion) {
    mixed.set(term, (mixed.get(term) ?? 0) + ((1 - feedback.originalWeight) * weight) / expansionSum);
  }
  return mixed;
}
