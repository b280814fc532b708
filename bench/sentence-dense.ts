/**
 * Sentence-level dense scores for the `--cv-sentences` (SciFact) and `--sentences` (sample corpus) experiments: each
 * item (an abstract, a chunk) keeps the unit vectors of its sentences, and a query gets, per item, its best
 * sentence's cosine (`max`), the mean of its best two (`top2`), and its best window of two adjacent sentences
 * (`win2`: cosine with the normalised sum of both vectors, so windows cost no further embedding).
 */
import { normalised } from '../lib/retrieval/dense-index.js';

export const SENTENCE_SCORINGS = ['max', 'top2', 'win2'] as const;
export type SentenceScoring = (typeof SENTENCE_SCORINGS)[number];

export class SentenceVectors {
  private readonly matrix: Float32Array;
  private readonly offsets: Int32Array;
  /** |v_i + v_{i+1}| for each adjacent pair within an item, so a window's cosine is (q·v_i + q·v_{i+1}) / it. */
  private readonly pairNorm: Float32Array;

  /** `vectors` in item order, `counts[i]` of them belonging to item i (at least one each). */
  constructor(
    vectors: ArrayLike<number>[],
    counts: number[],
    private readonly dimensions: number,
  ) {
    this.matrix = new Float32Array(vectors.length * dimensions);
    vectors.forEach((vector, i) => this.matrix.set(normalised(vector), i * dimensions));
    this.offsets = new Int32Array(counts.length + 1);
    counts.forEach((count, i) => (this.offsets[i + 1] = this.offsets[i]! + count));
    if (this.offsets[counts.length] !== vectors.length) throw new Error('sentence counts do not add up to vectors');
    this.pairNorm = new Float32Array(vectors.length);
    for (let item = 0; item < counts.length; item++) {
      for (let i = this.offsets[item]!; i < this.offsets[item + 1]! - 1; i++) {
        let dot = 0;
        for (let k = 0; k < dimensions; k++)
          dot += this.matrix[i * dimensions + k]! * this.matrix[(i + 1) * dimensions + k]!;
        this.pairNorm[i] = Math.sqrt(2 + 2 * dot);
      }
    }
  }

  /** Every item's `max`, `top2` and `win2` score for a unit query vector. */
  scores(query: Float32Array): Record<SentenceScoring, Float32Array> {
    const dims = this.dimensions;
    const sentences = this.matrix.length / dims;
    const sims = new Float32Array(sentences);
    for (let i = 0; i < sentences; i++) {
      let dot = 0;
      const base = i * dims;
      for (let k = 0; k < dims; k++) dot += query[k]! * this.matrix[base + k]!;
      sims[i] = dot;
    }
    const items = this.offsets.length - 1;
    const max = new Float32Array(items);
    const top2 = new Float32Array(items);
    const win2 = new Float32Array(items);
    for (let item = 0; item < items; item++) {
      const end = this.offsets[item + 1]!;
      let first = -Infinity;
      let second = -Infinity;
      let window = -Infinity;
      for (let i = this.offsets[item]!; i < end; i++) {
        const sim = sims[i]!;
        if (sim > first) [first, second] = [sim, first];
        else if (sim > second) second = sim;
        if (i < end - 1) window = Math.max(window, (sim + sims[i + 1]!) / this.pairNorm[i]!);
      }
      max[item] = first;
      top2[item] = second === -Infinity ? first : (first + second) / 2;
      win2[item] = window === -Infinity ? first : window;
    }
    return { max, top2, win2 };
  }
}
