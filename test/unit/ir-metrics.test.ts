import { describe, expect, it } from 'vitest';
import { evaluate, evaluateQuery, rankDocuments, type Qrels, type Run } from '../../lib/retrieval/ir-metrics.js';

const judged = (entries: Record<string, number>) => new Map(Object.entries(entries));

// Hand-checked against trec_eval semantics: ties by document id descending, linear gain, log2(rank + 1) discount.
const qrels: Qrels = new Map([
  ['q1', judged({ d1: 2, d2: 1, d3: 0, d9: 1 })],
  ['q2', judged({ d5: 0 })],
  ['q3', judged({ d6: 1 })],
  ['q4', judged({ d7: 3, d8: 1 })],
]);
const run: Run = new Map([
  ['q1', judged({ d1: 5, d2: 5, d3: 5, d4: 4, d9: 1 })],
  ['q2', judged({ d5: 3 })],
  ['q4', judged({ d8: 3, dx: 2, d7: 1 })],
]);

describe('ir-metrics', () => {
  it('breaks score ties by document id, descending', () => {
    expect(rankDocuments(run.get('q1')!)).toEqual(['d3', 'd2', 'd1', 'd4', 'd9']);
  });

  it('scores single queries', () => {
    const q1 = evaluateQuery(qrels.get('q1')!, run.get('q1'), 10);
    expect(q1.ndcg).toBeCloseTo(0.6445, 4);
    expect(q1.mrr).toBe(0.5);
    expect(q1.recall).toBe(1);
    expect(q1.precision).toBeCloseTo(0.3, 10);
    expect(evaluateQuery(qrels.get('q4')!, run.get('q4'), 10).ndcg).toBeCloseTo(0.6885, 4);
  });

  it('averages over every qrels query, counting unjudged-relevant and missing ones as 0', () => {
    const { mean, queries, perQuery } = evaluate(qrels, run, 10);
    expect(queries).toBe(4);
    expect(mean.ndcg).toBeCloseTo(0.3332, 4);
    expect(mean.recall).toBe(0.5);
    expect(mean.mrr).toBe(0.375);
    expect(perQuery.get('q2')).toEqual({ ndcg: 0, mrr: 0, recall: 0, precision: 0, f1: 0 });
    expect(perQuery.get('q3')?.ndcg).toBe(0);
  });

  it('applies the cut-off', () => {
    const q1 = evaluateQuery(qrels.get('q1')!, run.get('q1'), 2);
    expect(q1.recall).toBeCloseTo(1 / 3, 10);
    expect(q1.precision).toBe(0.5);
    expect(q1.f1).toBeCloseTo((2 * 0.5 * (1 / 3)) / (0.5 + 1 / 3), 10);
    // Ideal DCG@2 uses the two best grades (2, 1); the run has rel 0 then 1.
    expect(q1.ndcg).toBeCloseTo(1 / Math.log2(3) / (2 + 1 / Math.log2(3)), 10);
  });
});
