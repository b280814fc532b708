import { describe, expect, it } from 'vitest';
import {
  aggregateScores,
  percentile,
  QUALITY_WEIGHTS,
  scoreRanking,
  type EvalObservation,
} from '../../lib/eval/scores.js';

const observation = (overrides: Partial<EvalObservation>): EvalObservation => ({
  itemId: 'q',
  rankedDocIds: [],
  relevant: { a: 1 },
  citedDocIds: [],
  degraded: false,
  latencyMs: 100,
  ...overrides,
});

describe('scoreRanking', () => {
  it('keeps the given order, counts a document once and scores at k and at 10', () => {
    // Ranked: x, a, b (a repeated chunk of x dropped); relevant a (grade 2) and c.
    const scores = scoreRanking(['x', 'a', 'x', 'b'], { a: 2, c: 1 }, 2);
    expect(scores.precision).toBe(0.5);
    expect(scores.recall).toBe(0.5);
    expect(scores.f1).toBeCloseTo(0.5);
    expect(scores.mrr10).toBe(0.5);
    const dcg = 2 / Math.log2(3);
    const ideal = 2 + 1 / Math.log2(3);
    expect(scores.ndcg10).toBeCloseTo(dcg / ideal, 12);
    expect(scores.recall10).toBe(0.5);
  });

  it('does not reorder tied documents by id', () => {
    expect(scoreRanking(['a', 'z'], { a: 1 }, 1).precision).toBe(1);
  });
});

describe('aggregateScores', () => {
  it('averages rankings and answer checks, with nearest-rank latency percentiles', () => {
    const observations = [
      observation({ itemId: '1', rankedDocIds: ['a'], citedDocIds: ['a'], latencyMs: 10 }),
      observation({ itemId: '2', rankedDocIds: ['b'], citedDocIds: ['b', 'a'], latencyMs: 30, degraded: true }),
      observation({ itemId: '3', rankedDocIds: ['a'], latencyMs: 20 }),
      observation({ itemId: '4', error: 'failed', latencyMs: 0 }),
    ];
    const scores = aggregateScores(observations, 1);
    expect(scores.samples).toBe(4);
    expect(scores.errors).toBe(1);
    expect(scores.precision).toBe(0.5);
    expect(scores.mrr10).toBe(0.5);
    expect(scores.citationsPresentShare).toBe(0.5);
    expect(scores.citedRelevantShare).toBe(0.75);
    expect(scores.nonDegradedShare).toBe(0.5);
    expect(scores.degradedShare).toBe(0.5);
    expect(scores.latencyP50Ms).toBe(20);
    expect(scores.latencyP95Ms).toBe(30);
    const expected =
      QUALITY_WEIGHTS.ndcg10 * scores.ndcg10 +
      QUALITY_WEIGHTS.recall * scores.recall +
      QUALITY_WEIGHTS.citedRelevantShare * 0.75 +
      QUALITY_WEIGHTS.citationsPresentShare * 0.5 +
      QUALITY_WEIGHTS.nonDegradedShare * 0.5;
    expect(scores.quality).toBeCloseTo(expected, 12);
  });

  it('scores a perfect batch 1 and an empty batch 0', () => {
    const perfect = aggregateScores([observation({ rankedDocIds: ['a'], citedDocIds: ['a'] })], 1);
    expect(perfect.quality).toBeCloseTo(1, 12);
    expect(aggregateScores([], 5).quality).toBe(0);
  });

  it('computes percentiles by nearest rank', () => {
    expect(percentile([5, 1, 3, 2, 4], 50)).toBe(3);
    expect(percentile([], 95)).toBe(0);
  });
});
