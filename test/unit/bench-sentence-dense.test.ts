import { describe, expect, it } from 'vitest';
import { SentenceVectors, splitSentences } from '../../bench/sentence-dense.js';

describe('splitSentences', () => {
  it('ends a sentence at a stop before a capital, digit or bracket, not after an abbreviation', () => {
    const text =
      'Mice lacking IL-6 were studied (Smith et al. 2001). Tumours grew faster, e.g. Fig. 2 shows it. ' +
      '17 of 20 mice died! (A) Survival fell sharply? yes, in most groups we measured.';
    expect(splitSentences(text)).toEqual([
      'Mice lacking IL-6 were studied (Smith et al. 2001).',
      'Tumours grew faster, e.g. Fig. 2 shows it.',
      '17 of 20 mice died!',
      '(A) Survival fell sharply? yes, in most groups we measured.',
    ]);
  });

  it('breaks at line ends and joins pieces under four words to the next, the last one to the previous', () => {
    const text = '## Deletion timeline\n\n- **Days 0 to 14:** the organization is soft-deleted.\nNo way back. Really.';
    expect(splitSentences(text)).toEqual([
      '## Deletion timeline - **Days 0 to 14:** the organization is soft-deleted.',
      'No way back. Really.',
    ]);
    expect(splitSentences('The organization is soft-deleted. Gone.')).toEqual([
      'The organization is soft-deleted. Gone.',
    ]);
    expect(splitSentences('Too short.')).toEqual(['Too short.']);
  });
});

describe('SentenceVectors', () => {
  // Item 0: three sentences along x, y and x+y; item 1: one sentence along -x.
  const s = Math.SQRT1_2;
  const vectors = new SentenceVectors(
    [
      [1, 0],
      [0, 2],
      [1, 1],
      [-3, 0],
    ],
    [3, 1],
    2,
  );

  it("scores each item by its best sentence, best two and best window, against the query's unit vector", () => {
    const { max, top2, win2, win3 } = vectors.scores(Float32Array.from([1, 0]));
    expect(max[0]).toBeCloseTo(1, 6);
    expect(top2[0]).toBeCloseTo((1 + s) / 2, 6);
    // Windows (x, y) → (1, 1)/√2 and (y, x+y) → (s, 1 + s)/|·|; the first is better.
    expect(win2[0]).toBeCloseTo(s, 6);
    const sum = [1 + s, 1 + s];
    expect(win3[0]).toBeCloseTo(sum[0]! / Math.hypot(sum[0]!, sum[1]!), 6);
    // A one-sentence item is its own sentence, pair and window.
    for (const scores of [max, top2, win2, win3]) expect(scores[1]).toBeCloseTo(-1, 6);
  });

  it('refuses counts that do not add up to the vectors', () => {
    expect(() => new SentenceVectors([[1, 0]], [2], 2)).toThrow(/do not add up/);
  });
});
