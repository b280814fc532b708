/**
 * Dense search speed: exact scan against the HNSW index (usearch) over N synthetic unit vectors, with the ANN's
 * recall@10 against exact, its build time and the process's memory growth.
 *
 *   npm run bench -- dense [--vectors 5183] [--dimensions 384] [--queries 200] [--ann]
 *
 * Random Gaussian vectors are the hard case for HNSW (no cluster structure), so recall here is a floor.
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { DenseIndex, normalised } from '../lib/retrieval/dense-index.js';

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 1) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.floor(values.length * p)]!;
const round = (value: number, digits = 3) => Number(value.toFixed(digits));

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      vectors: { type: 'string', default: '5183' },
      dimensions: { type: 'string', default: '384' },
      queries: { type: 'string', default: '200' },
      ann: { type: 'boolean', default: false },
    },
  });
  const count = Number(values.vectors);
  const dims = Number(values.dimensions);
  const next = gaussian(42);
  const vector = () => Float32Array.from({ length: dims }, next);
  gc();
  const rssBefore = process.memoryUsage().rss;
  const index = new DenseIndex(dims, { annThreshold: Infinity });
  for (let i = 0; i < count; i++) index.put(`v${i}`, vector());
  gc();
  const loadedMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  const queries = Array.from({ length: Number(values.queries) }, vector);
  const exactMs: number[] = [];
  const exact = queries.map((query) => {
    const started = performance.now();
    const found = index.searchExact(normalised(query), 10);
    exactMs.push(performance.now() - started);
    return found;
  });
  const figures: Record<string, number> = {
    vectors: count,
    dimensions: dims,
    exactP50Ms: round(percentile(exactMs, 0.5)),
    exactP95Ms: round(percentile(exactMs, 0.95)),
    matrixRssMb: Math.round(loadedMb),
  };
  if (values.ann) {
    let started = performance.now();
    index.buildAnn();
    figures['annBuildSeconds'] = round((performance.now() - started) / 1000, 1);
    gc();
    figures['annRssMb'] = Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20 - loadedMb);
    const annMs: number[] = [];
    let agreed = 0;
    queries.forEach((query, i) => {
      started = performance.now();
      const found = index.search(query, 10);
      annMs.push(performance.now() - started);
      const truth = new Set(exact[i]!.map(({ id }) => id));
      agreed += found.filter(({ id }) => truth.has(id)).length;
    });
    figures['annP50Ms'] = round(percentile(annMs, 0.5));
    figures['annP95Ms'] = round(percentile(annMs, 0.95));
    figures['annRecall10'] = round(agreed / (queries.length * 10), 4);
  }
  console.log(JSON.stringify({ dense: figures }));
}
