import type { ForwardIndex } from './forward-index.js';
import type { Bm25Params } from './params.js';

/**
 * The read side of a tenant's lexical index: an inverted index in CSR form for one set of BM25 parameters — one
 * Int32Array of chunk slots and one Float32Array of precomputed BM25F impacts (idf and length normalisation folded
 * in) per term. Built in one linear pass over the forward index (about 20 ms for SciFact), far cheaper than keeping
 * per-term mutable postings, and it makes a query a plain sum over typed arrays.
 */
export interface FrozenIndex {
  /** Term `t`'s postings are `[offsets[t], offsets[t + 1])`. */
  offsets: Int32Array;
  postingSlots: Int32Array;
  impacts: Float32Array;
  docFrequency: Int32Array;
}

/** Freezes the live slots (`live[slot]` defined, `liveCount` of them) of `forward` over `terms` term ids. */
export function freezeIndex(
  forward: ForwardIndex,
  live: readonly (object | undefined)[],
  liveCount: number,
  terms: number,
  params: Bm25Params,
): FrozenIndex {
  const { k1, b, titleB, titleWeight } = params;
  const { slotCount, start: fwdStart, count: fwdCount, term: fwdTerm, titleLength, bodyLength } = forward;
  const { titleTf: fwdTitleTf, bodyTf: fwdBodyTf } = forward;
  const docFrequency = new Int32Array(terms);
  let titleTotal = 0;
  let bodyTotal = 0;
  for (let slot = 0; slot < slotCount; slot++) {
    if (!live[slot]) continue;
    titleTotal += titleLength[slot]!;
    bodyTotal += bodyLength[slot]!;
    const start = fwdStart[slot]!;
    const end = start + fwdCount[slot]!;
    for (let i = start; i < end; i++) docFrequency[fwdTerm[i]!]!++;
  }
  const n = liveCount;
  const avgTitle = Math.max(titleTotal / n, 1e-9);
  const avgBody = Math.max(bodyTotal / n, 1e-9);
  const offsets = new Int32Array(terms + 1);
  for (let t = 0; t < terms; t++) offsets[t + 1] = offsets[t]! + docFrequency[t]!;
  const postingSlots = new Int32Array(offsets[terms]!);
  const impacts = new Float32Array(offsets[terms]!);
  const idf = new Float64Array(terms);
  // Lucene's non-negative BM25 idf.
  for (let t = 0; t < terms; t++) idf[t] = Math.log(1 + (n - docFrequency[t]! + 0.5) / (docFrequency[t]! + 0.5));
  const fill = offsets.slice(0, terms);
  for (let slot = 0; slot < slotCount; slot++) {
    if (!live[slot]) continue;
    const titleNorm = 1 - titleB + (titleB * titleLength[slot]!) / avgTitle;
    const bodyNorm = 1 - b + (b * bodyLength[slot]!) / avgBody;
    const start = fwdStart[slot]!;
    const end = start + fwdCount[slot]!;
    for (let i = start; i < end; i++) {
      const term = fwdTerm[i]!;
      const titleTf = fwdTitleTf[i]!;
      const bodyTf = fwdBodyTf[i]!;
      // A field the term does not occur in adds nothing: with b = 1 an empty field's norm is 0, and 0/0 would make
      // the score NaN, which no comparison ranks (a NaN chunk stuck at the top of a top-1 search).
      const tf = (titleTf > 0 ? (titleWeight * titleTf) / titleNorm : 0) + (bodyTf > 0 ? bodyTf / bodyNorm : 0);
      const at = fill[term]!++;
      postingSlots[at] = slot;
      impacts[at] = (idf[term]! * tf * (k1 + 1)) / (k1 + tf);
    }
  }
  return { offsets, postingSlots, impacts, docFrequency };
}
