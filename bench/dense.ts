/**
 * Dense search speed: exact scan against the HNSW index (usearch) over N synthetic unit vectors, with the ANN's
 * recall@10 against exact, its build time and the process's memory growth.
 *
 *   npm run bench -- dense [--vectors 5183] [--dimensions 384] [--queries 200] [--ann] [--clusters N]
 *                          [--connectivity 16] [--expansion-add 128] [--expansion-search 128] [--scalar]
 *
 * `--checkpoints 100000,250000,1000000` (with --ann) grows one HNSW graph batch by batch (multi-threaded adds) and
 * prints a JSON line at each size: build seconds and CPU seconds so far, memory, exact and ANN latency and recall@10
 * against exact for the queries, so a run cut short still reports every size it reached.
 *
 * `--scalar` also times the scalar JavaScript scan on the same queries (the SIMD kernel's reference) and counts
 * queries whose results differ between the two (must be 0). The `neighbourCos*` figures (mean cosine of a query's
 * 1st and 10th nearest stored vector, and the median cosine to a random stored vector) describe how clustered the
 * synthetic set is, to compare with real embeddings (lib/retrieval/README.md).
 *
 * Random Gaussian vectors are the hard case for HNSW (no cluster structure, every point nearly equidistant in 384
 * dimensions), so recall on them is a floor. `--clusters N` draws vectors around N random centres instead (each a
 * centre plus Gaussian noise of the same total magnitude), closer to real text embeddings, which crowd into
 * topics; queries are drawn the same way. Each timing starts after 20 unmeasured warm-up queries, as a running
 * server's would.
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Index as UsearchIndex } from 'usearch';
import { DenseIndex, normalised } from '../lib/retrieval/dense-index.js';
import { seededRandom } from '../lib/random.js';

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/**
 * Uniform in (0, 1], seeded: lib/random.ts's [0, 1) moved up by its step 2^-32 (exact in a double), so the logarithm
 * below never sees 0 and every draw is the one this bench made before it shared that generator.
 */
function uniformFrom(seed: number): () => number {
  const random = seededRandom(seed);
  return () => random() + 2 ** -32;
}

function gaussian(seed: number): () => number {
  const uniform = uniformFrom(seed);
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.floor(values.length * p)]!;
const round = (value: number, digits = 3) => Number(value.toFixed(digits));
const cpuMs = ({ user, system }: NodeJS.CpuUsage) => (user + system) / 1000;

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      vectors: { type: 'string', default: '5183' },
      dimensions: { type: 'string', default: '384' },
      queries: { type: 'string', default: '200' },
      ann: { type: 'boolean', default: false },
      clusters: { type: 'string', default: '0' },
      connectivity: { type: 'string', default: '16' },
      'expansion-add': { type: 'string', default: '128' },
      'expansion-search': { type: 'string', default: '128' },
      // Results asked of the graph per query, each a separate measurement (comma-separated; ≥ 10 widens the search).
      candidates: { type: 'string', default: '10' },
      scalar: { type: 'boolean', default: false },
      checkpoints: { type: 'string' },
    },
  });
  const count = Number(values.vectors);
  const dims = Number(values.dimensions);
  const next = gaussian(42);
  const clusters = Number(values.clusters);
  const centres = Array.from({ length: clusters }, () => normalised(Float32Array.from({ length: dims }, next)));
  const noise = 1 / Math.sqrt(dims);
  const pick = uniformFrom(7);
  const vector = () => {
    if (clusters === 0) return Float32Array.from({ length: dims }, next);
    const centre = centres[Math.min(clusters - 1, Math.floor(pick() * clusters))]!;
    return Float32Array.from(centre, (value) => value + noise * next());
  };
  if (values.checkpoints) {
    growing({
      sizes: values.checkpoints.split(',').map(Number),
      dims,
      queries: Number(values.queries),
      vector,
      distribution: clusters === 0 ? 'gaussian' : `${clusters} clusters`,
      hnsw: {
        connectivity: Number(values.connectivity),
        expansionAdd: Number(values['expansion-add']),
        expansionSearch: Number(values['expansion-search']),
      },
      candidates: values.candidates.split(',').map(Number),
    });
    return;
  }
  gc();
  const rssBefore = process.memoryUsage().rss;
  const index = new DenseIndex(dims, {
    annThreshold: Infinity,
    connectivity: Number(values.connectivity),
    expansionAdd: Number(values['expansion-add']),
    expansionSearch: Number(values['expansion-search']),
  });
  for (let i = 0; i < count; i++) index.put(`v${i}`, vector());
  gc();
  const loadedMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  const queries = Array.from({ length: Number(values.queries) }, vector);
  for (const query of queries.slice(0, 20)) index.searchExact(normalised(query), 10);
  const exactMs: number[] = [];
  // CPU time as well as wall time: on shared, loaded cores the wall time mostly measures waiting for a core.
  const cpuBefore = process.cpuUsage();
  const exact = queries.map((query) => {
    const started = performance.now();
    const found = index.searchExact(normalised(query), 10);
    exactMs.push(performance.now() - started);
    return found;
  });
  const figures: Record<string, number | string> = {
    vectors: count,
    dimensions: dims,
    distribution: clusters === 0 ? 'gaussian' : `${clusters} clusters`,
    exactScan: index.exactScan,
    exactP50Ms: round(percentile(exactMs, 0.5)),
    exactP95Ms: round(percentile(exactMs, 0.95)),
    exactCpuMsPerQuery: round(cpuMs(process.cpuUsage(cpuBefore)) / queries.length),
    matrixRssMb: Math.round(loadedMb),
  };
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  figures['neighbourCos1'] = round(mean(exact.map((found) => found[0]!.score)));
  figures['neighbourCos10'] = round(mean(exact.map((found) => found[9]?.score ?? Number.NaN)));
  const randomCos = queries.map((query) => {
    const unit = normalised(query);
    const other = index.get(`v${Math.floor(pick() * count)}`)!;
    return unit.reduce((sum, value, d) => sum + value * other[d]!, 0);
  });
  figures['randomPairCosMedian'] = round(percentile(randomCos, 0.5));
  if (values.scalar) {
    for (const query of queries.slice(0, 20)) index.searchExact(normalised(query), 10, 'scalar');
    const scalarMs: number[] = [];
    let differing = 0;
    const scalarCpuBefore = process.cpuUsage();
    queries.forEach((query, i) => {
      const started = performance.now();
      const found = index.searchExact(normalised(query), 10, 'scalar');
      scalarMs.push(performance.now() - started);
      if (JSON.stringify(found) !== JSON.stringify(exact[i])) differing++;
    });
    figures['scalarP50Ms'] = round(percentile(scalarMs, 0.5));
    figures['scalarP95Ms'] = round(percentile(scalarMs, 0.95));
    figures['scalarCpuMsPerQuery'] = round(cpuMs(process.cpuUsage(scalarCpuBefore)) / queries.length);
    figures['queriesDifferingFromScalar'] = differing;
  }
  if (values.ann) {
    let started = performance.now();
    index.buildAnn();
    figures['hnsw'] = `M ${values.connectivity}, ef_add ${values['expansion-add']}, ef ${values['expansion-search']}`;
    figures['annBuildSeconds'] = round((performance.now() - started) / 1000, 1);
    gc();
    figures['annRssMb'] = Math.round((process.memoryUsage().rss - rssBefore) / 2 ** 20 - loadedMb);
    const unitQueries = queries.map((query) => normalised(query));
    for (const candidates of values.candidates.split(',').map(Number)) {
      for (const query of unitQueries.slice(0, 20)) index.searchAnn(query, 10, candidates);
      const annMs: number[] = [];
      let agreed = 0;
      const annCpuBefore = process.cpuUsage();
      unitQueries.forEach((query, i) => {
        started = performance.now();
        const found = index.searchAnn(query, 10, candidates);
        annMs.push(performance.now() - started);
        const truth = new Set(exact[i]!.map(({ id }) => id));
        agreed += found.filter(({ id }) => truth.has(id)).length;
      });
      const suffix = candidates === 10 ? '' : `@${candidates}`;
      figures[`annCpuMsPerQuery${suffix}`] = round(cpuMs(process.cpuUsage(annCpuBefore)) / queries.length);
      figures[`annP50Ms${suffix}`] = round(percentile(annMs, 0.5));
      figures[`annP95Ms${suffix}`] = round(percentile(annMs, 0.95));
      figures[`annRecall10${suffix}`] = round(agreed / (queries.length * 10), 4);
    }
  }
  console.log(JSON.stringify({ dense: figures }));
}

interface GrowingRun {
  sizes: number[];
  dims: number;
  queries: number;
  vector: () => Float32Array;
  distribution: string;
  hnsw: { connectivity: number; expansionAdd: number; expansionSearch: number };
  candidates: number[];
}

/**
 * One graph grown to each size in turn, with the same usearch settings DenseIndex.buildAnn uses; the exact
 * reference is a DenseIndex holding the same vectors. Queries are drawn before the vectors, from the same generator.
 */
function growing(run: GrowingRun): void {
  const { dims, hnsw } = run;
  const queries = Array.from({ length: run.queries }, () => normalised(run.vector()));
  gc();
  const rssBefore = process.memoryUsage().rss;
  const exact = new DenseIndex(dims, { annThreshold: Infinity });
  const ann = new UsearchIndex({
    dimensions: dims,
    metric: 'cos' as never,
    quantization: 'f32' as never,
    connectivity: hnsw.connectivity,
    expansion_add: hnsw.expansionAdd,
    expansion_search: hnsw.expansionSearch,
    multi: false,
  });
  const batch = 65_536;
  let added = 0;
  let buildMs = 0;
  let buildCpuMs = 0;
  for (const size of [...run.sizes].sort((a, b) => a - b)) {
    while (added < size) {
      const count = Math.min(batch, size - added);
      const keys = new BigUint64Array(count);
      const block = new Float32Array(count * dims);
      for (let i = 0; i < count; i++) {
        const unit = normalised(run.vector());
        exact.put(String(added + i), unit);
        block.set(unit, i * dims);
        keys[i] = BigInt(added + i);
      }
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      ann.add(keys, block, 0);
      buildCpuMs += cpuMs(process.cpuUsage(cpuBefore));
      buildMs += performance.now() - started;
      added += count;
    }
    gc();
    const rssMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
    const vectorsMb = (size * dims * 4) / 2 ** 20;
    for (const query of queries.slice(0, 20)) exact.searchExact(query, 10);
    const exactMs: number[] = [];
    const truth = queries.map((query) => {
      const started = performance.now();
      const found = exact.searchExact(query, 10);
      exactMs.push(performance.now() - started);
      return found;
    });
    const figures: Record<string, number | string> = {
      vectors: size,
      dimensions: dims,
      distribution: run.distribution,
      hnsw: `M ${hnsw.connectivity}, ef_add ${hnsw.expansionAdd}, ef ${hnsw.expansionSearch}`,
      annBuildSeconds: round(buildMs / 1000, 1),
      annBuildCpuSeconds: round(buildCpuMs / 1000, 1),
      rssMb: Math.round(rssMb),
      vectorsMb: Math.round(vectorsMb),
      // The exact DenseIndex holds one float32 copy of the vectors; the rest of the growth is the graph's.
      annRssMb: Math.round(rssMb - vectorsMb),
      exactP50Ms: round(percentile(exactMs, 0.5)),
      neighbourCos1: round(truth.reduce((sum, found) => sum + found[0]!.score, 0) / truth.length),
      neighbourCos10: round(truth.reduce((sum, found) => sum + (found[9]?.score ?? Number.NaN), 0) / truth.length),
    };
    for (const candidates of run.candidates) {
      const ask = Math.min(Math.max(10, candidates), size);
      for (const query of queries.slice(0, 20)) ann.search(query, ask, 0);
      const annMs: number[] = [];
      let agreed = 0;
      const cpuBefore = process.cpuUsage();
      queries.forEach((query, i) => {
        const started = performance.now();
        const found = ann.search(query, ask, 0);
        annMs.push(performance.now() - started);
        const expected = new Set(truth[i]!.map(({ id }) => id));
        for (let j = 0; j < Math.min(10, found.keys.length); j++) if (expected.has(String(found.keys[j]))) agreed++;
      });
      const suffix = candidates === 10 ? '' : `@${candidates}`;
      figures[`annP50Ms${suffix}`] = round(percentile(annMs, 0.5));
      figures[`annP95Ms${suffix}`] = round(percentile(annMs, 0.95));
      figures[`annCpuMsPerQuery${suffix}`] = round(cpuMs(process.cpuUsage(cpuBefore)) / queries.length);
      figures[`annRecall10${suffix}`] = round(agreed / (queries.length * 10), 4);
    }
    console.log(JSON.stringify({ dense: figures }));
  }
}
