import { describe, expect, it } from 'vitest';
import { DEFAULT_RRF_K, reciprocalRankFusion, weightedScoreFusion } from '../../lib/retrieval/fusion.js';

const list = (...ids: string[]) => ids.map((id) => ({ id }));

describe('reciprocalRankFusion', () => {
  it('sums 1 / (k + rank) over the rankings', () => {
    const fused = reciprocalRankFusion([list('a', 'b', 'c'), list('c', 'a')], 60);
    expect(fused.map((result) => result.id)).toEqual(['a', 'c', 'b']);
    expect(fused[0]!.score).toBeCloseTo(1 / 61 + 1 / 62, 12);
    expect(fused[1]!.score).toBeCloseTo(1 / 63 + 1 / 61, 12);
    expect(fused[2]!.score).toBeCloseTo(1 / 62, 12);
  });

  it('uses k = 60 by default and honours an explicit k', () => {
    expect(DEFAULT_RRF_K).toBe(60);
    expect(reciprocalRankFusion([list('a')])[0]!.score).toBeCloseTo(1 / 61, 12);
    // With k = 0 the top of one list (1/1) beats second place in both (1/2 + 1/2) only by a tie: order stays stable.
    const fused = reciprocalRankFusion([list('x', 'y'), list('z', 'y')], 0);
    expect(fused.map((result) => result.score)).toEqual([1, 1, 1]);
    expect(fused.map((result) => result.id)).toEqual(['x', 'y', 'z']);
  });

  it('counts an id repeated within one list once, at its best rank, and applies the limit', () => {
    const fused = reciprocalRankFusion([list('a', 'a', 'b')], 60, 1);
    expect(fused).toEqual([{ id: 'a', score: 1 / 61 }]);
  });

  it('rejects a negative k', () => {
    expect(() => reciprocalRankFusion([], -1)).toThrow(RangeError);
  });
});

describe('weightedScoreFusion', () => {
  it('mixes min-max normalised scores by the dense weight', () => {
    const lexical = [
      { id: 'a', score: 12 },
      { id: 'b', score: 6 },
      { id: 'c', score: 0 },
    ];
    const dense = [
      { id: 'c', score: 0.9 },
      { id: 'b', score: 0.85 },
      { id: 'd', score: 0.4 },
    ];
    const byId = (results: { id: string; score: number }[]) => new Map(results.map(({ id, score }) => [id, score]));
    const even = byId(weightedScoreFusion(lexical, dense, 0.5));
    expect(even.get('a')).toBeCloseTo(0.5);
    expect(even.get('b')).toBeCloseTo(0.25 + 0.45);
    expect(even.get('c')).toBeCloseTo(0.5);
    expect(even.get('d')).toBeCloseTo(0);
    expect(weightedScoreFusion(lexical, dense, 0).map(({ id }) => id)[0]).toBe('a');
    expect(weightedScoreFusion(lexical, dense, 1).map(({ id }) => id)[0]).toBe('c');
    expect(weightedScoreFusion(lexical, dense, 0.5, 1)).toHaveLength(1);
  });

  it("mixes z-scores, an id missing from a leg taking that leg's lowest", () => {
    // Lexical z-scores: a +1.2247, b 0, c -1.2247; dense: x +1.4142, y -0.7071, z -0.7071.
    const lexical = [
      { id: 'a', score: 3 },
      { id: 'b', score: 2 },
      { id: 'c', score: 1 },
    ];
    const dense = [
      { id: 'x', score: 0.9 },
      { id: 'y', score: 0.6 },
      { id: 'z', score: 0.6 },
    ];
    const fused = new Map(weightedScoreFusion(lexical, dense, 0.5, undefined, 'z-score').map((r) => [r.id, r.score]));
    expect(fused.get('a')).toBeCloseTo(0.5 * 1.2247 + 0.5 * -0.7071, 3);
    expect(fused.get('x')).toBeCloseTo(0.5 * -1.2247 + 0.5 * 1.4142, 3);
    expect(fused.get('b')).toBeCloseTo(0.5 * 0 + 0.5 * -0.7071, 3);
  });

  it('rejects a weight outside [0, 1]', () => {
    expect(() => weightedScoreFusion([], [], 1.5)).toThrow(RangeError);
  });
});
