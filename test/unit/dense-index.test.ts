import { describe, expect, it } from 'vitest';
import { DenseIndex, normalised, vectorProblem } from '../../lib/retrieval/dense-index.js';

function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
}

const vectors = (count: number, dims: number, seed = 7) => {
  const next = random(seed);
  return Array.from({ length: count }, () => Array.from({ length: dims }, next));
};

function bruteForce(stored: Map<string, number[]>, query: number[], k: number): string[] {
  const q = normalised(query);
  return [...stored.entries()]
    .map(([id, vector]) => {
      const v = normalised(vector);
      return { id, score: v.reduce((sum, value, i) => sum + value * q[i]!, 0) };
    })
    .sort((a, b) => b.score - a.score)
    .slice(0, k)
    .map(({ id }) => id);
}

/** The share of each query's exact top 10 that the index's search returns. */
function recallAt10(index: DenseIndex, stored: Map<string, number[]>, queries: number[][]): number {
  let agreed = 0;
  for (const query of queries) {
    const found = new Set(index.search(query, 10).map(({ id }) => id));
    agreed += bruteForce(stored, query, 10).filter((id) => found.has(id)).length;
  }
  return agreed / (queries.length * 10);
}

describe('DenseIndex', () => {
  it('finds exactly the most similar vectors, best first, with cosine scores', () => {
    const index = new DenseIndex(8);
    const stored = new Map(vectors(300, 8).map((vector, i) => [`c${i}`, vector]));
    for (const [id, vector] of stored) index.put(id, vector);
    for (const query of vectors(20, 8, 99)) {
      const found = index.search(query, 10);
      expect(found.map(({ id }) => id)).toEqual(bruteForce(stored, query, 10));
      expect(found[0]!.score).toBeLessThanOrEqual(1.0001);
      expect(found.every((match, i) => i === 0 || match.score <= found[i - 1]!.score)).toBe(true);
    }
  });

  it('keeps replaced and removed vectors out of results and reuses their rows', () => {
    const index = new DenseIndex(2);
    index.put('a', [1, 0]);
    index.put('b', [0, 1]);
    index.put('a', [-1, 0]);
    expect(index.search([1, 0], 2).map(({ id }) => id)).toEqual(['b', 'a']);
    expect(index.remove('b')).toBe(true);
    expect(index.remove('b')).toBe(false);
    expect(index.search([0, 1], 5).map(({ id }) => id)).toEqual(['a']);
    index.put('c', [0, 1]);
    expect(index.size).toBe(2);
    expect(index.search([0, 1], 1)[0]).toMatchObject({ id: 'c' });
  });

  it('switches to the HNSW index past its threshold and agrees with exact search', () => {
    const index = new DenseIndex(16, { annThreshold: 500 });
    const stored = new Map(vectors(2000, 16).map((vector, i) => [`c${i}`, vector]));
    for (const [id, vector] of stored) index.put(id, vector);
    const queries = vectors(50, 16, 3);
    expect(recallAt10(index, stored, queries)).toBeGreaterThan(0.95);
    expect(index.usesAnn).toBe(true);
    // Updates after the graph exists are applied to it too.
    index.remove('c0');
    index.put('fresh', queries[0]!);
    const after = index.search(queries[0]!, 10).map(({ id }) => id);
    expect(after[0]).toBe('fresh');
    expect(after).not.toContain('c0');
  });

  it('searches the graph as widely as its search list says: wider finds more of the exact top 10', () => {
    // Uniform random vectors have no structure for the graph to follow, so a narrow list visibly misses neighbours.
    const stored = new Map(vectors(3000, 48, 11).map((vector, i) => [`c${i}`, vector]));
    const recall = (expansionSearch: number) => {
      const index = new DenseIndex(48, { annThreshold: 1, connectivity: 8, expansionAdd: 32, expansionSearch });
      for (const [id, vector] of stored) index.put(id, vector);
      const found = recallAt10(index, stored, vectors(40, 48, 5));
      expect(index.usesAnn).toBe(true);
      return found;
    };
    const wide = recall(3000);
    expect(wide).toBeGreaterThan(0.95);
    expect(recall(10)).toBeLessThan(wide - 0.3);
  });

  it('names what is wrong with a vector', () => {
    expect(vectorProblem([1, 2], 3)).toMatch(/2 dimensions, expected 3/);
    expect(vectorProblem([1, Number.NaN, 0], 3)).toMatch(/NaN/);
    expect(vectorProblem([0, 0, 0], 3)).toMatch(/zeros/);
    expect(vectorProblem([0, 1, 0], 3)).toBeUndefined();
  });

  it('gives the SIMD scan exactly the scalar scan results: ids, order and float scores, across growth and removals', () => {
    for (const dims of [384, 7]) {
      const index = new DenseIndex(dims);
      expect(index.exactScan).toBe('simd');
      // More rows than one scan block (1,024), some removed and some reused, and duplicates so ties occur.
      const stored = vectors(2600, dims, dims);
      stored.forEach((vector, i) => index.put(`c${i}`, vector));
      for (let i = 0; i < 2600; i += 7) index.remove(`c${i}`);
      for (let i = 0; i < 40; i++) index.put(`dup${i}`, stored[i % 5]!);
      for (const query of [...vectors(30, dims, 5), stored[1]!]) {
        const unit = normalised(query);
        for (const k of [1, 10, 100]) {
          const simd = index.searchExact(unit, k, 'simd');
          expect(simd).toEqual(index.searchExact(unit, k, 'scalar'));
          expect(simd).toHaveLength(k);
        }
      }
      // c1 and its eight duplicates tie at the top.
      const ties = index.searchExact(normalised(stored[1]!), 9);
      expect(new Set(ties.map(({ score }) => score)).size).toBe(1);
    }
  });

  it('returns stored vectors as copies that outlive the index growing', () => {
    const index = new DenseIndex(4);
    index.put('a', [3, 0, 4, 0]);
    const before = index.get('a')!;
    for (let i = 0; i < 5000; i++) index.put(`v${i}`, [1, i, 2, 3]);
    expect(Array.from(before)).toEqual([0.6000000238418579, 0, 0.800000011920929, 0]);
    expect(index.get('a')).toEqual(before);
  });
});
