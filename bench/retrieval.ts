/**
 * Lexical retrieval quality and speed on a BEIR dataset (SciFact by default), ragline's EmbeddedStore against
 * MiniSearch and Orama in the same process; or, with --synthetic N, search latency and memory over N generated
 * chunks. Tuning history and figures: lib/retrieval/README.md.
 *
 * With QDRANT_URL set, QdrantStore (sparse BM25 through Qdrant) is measured too, beside the embedded store; its
 * rssMb is this client's only, the server's memory is its own.
 *
 *   npm run bench -- retrieval [--dataset DIR] [--k1 N] [--b N] [--title-weight N] [--title-b N] [--document-weight N]
 *                              [--rm3-docs N] [--rm3-terms N] [--rm3-weight N] [--only ragline]
 *   npm run bench -- retrieval --synthetic 1000000 [--queries 200]
 *   npm run bench -- retrieval --embedder-url URL --embedding-model NAME [--query-input-type query]
 *                              [--document-input-type passage] [--query-prefix P] [--document-prefix P]
 *                              [--fusion rrf|weighted] [--rrf-k N] [--dense-weight W]
 *                              [--normalisation z-score|min-max] [--cv] [--cv-lexical] [--cv-feedback] [--cv-rm3] [--cv-joint] [--cv-fill]
 *                              [--cv-sentences]
 *
 * With an embedder, `dense` (exact cosine over the document vectors) and `hybrid` (the EmbeddedStore with the
 * embedder, fusing both legs) are measured too; document embeddings come from the on-disk cache (fill it once
 * with `npm run bench -- embed`). `--cv` prints two-fold cross-validated nDCG@10 for the fusion parameters,
 * `--cv-lexical` for the BM25F parameters (see tuneByCrossValidation), `--cv-feedback` for dense pseudo-relevance
 * feedback on the hybrid (crossValidateDenseFeedback), `--cv-rm3` for RM3 on the hybrid's lexical leg, `--cv-joint`
 * for BM25F's parameters chosen together with the fusion weight (crossValidateJoint), `--cv-fill` for fusion with
 * every candidate's true score in both legs (crossValidateFilledFusion), `--cv-sentences` for a dense leg that also
 * scores each document by its best-matching sentences (crossValidateSentences; embeds every abstract sentence once,
 * through the cache).
 *
 * One chunk per BEIR document (title + text), which is how BEIR numbers are reported; ragline's chunker would
 * split long abstracts and change what is being compared. Each peer runs its documented default BM25 setup.
 * rssMb is the growth of the process's resident set while that engine's index was built (after a GC), so it
 * includes the texts an engine keeps: ragline and Orama keep them, MiniSearch keeps only ids.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createGunzip } from 'node:zlib';
import { create, insertMultiple, search as oramaSearch } from '@orama/orama';
import MiniSearch from 'minisearch';
import { QdrantClient } from '@qdrant/js-client-rest';
import { loadConfig } from '../lib/config.js';
import type { DocumentChunks } from '../lib/domain.js';
import { DenseIndex, normalised } from '../lib/retrieval/dense-index.js';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../lib/retrieval/embedded-store.js';
import { QdrantStore } from '../lib/retrieval/qdrant-store.js';
import { documentEmbeddingText } from '../lib/retrieval/embedder.js';
import {
  DEFAULT_FUSION,
  fuseHybrid,
  fuseWeightedLegs,
  type FusionKind,
  type FusionParams,
  type ScoreNormalisation,
} from '../lib/retrieval/fusion.js';
import { evaluate, evaluateQuery, type Qrels, type Run } from '../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../lib/retrieval/openai-embedder.js';
import { embedAll, embedderFromArgs, embedderOptions } from './embeddings.js';
import { SENTENCE_SCORINGS, SentenceVectors, splitSentences, type SentenceScoring } from './sentence-dense.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface BeirDoc {
  _id: string;
  title?: string;
  text: string;
}

export interface Dataset {
  corpus: BeirDoc[];
  queries: Map<string, string>;
  qrels: Qrels;
}

interface Engine {
  name: string;
  build(corpus: BeirDoc[]): Promise<void>;
  /** document id → score, best `k` */
  search(query: string, k: number): Promise<Map<string, number>>;
  dispose(): Promise<void>;
}

interface EngineFigures {
  ndcg10: number;
  recall100: number;
  mrr10: number;
  msPerQuery: number;
  indexSeconds: number;
  docsPerSecond: number;
  rssMb: number;
}

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function settledRssMb(): number {
  gc();
  gc();
  return process.memoryUsage().rss / 2 ** 20;
}

async function* lines(file: string): AsyncGenerator<string> {
  const input = file.endsWith('.gz') ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
  for await (const line of createInterface({ input, crlfDelay: Infinity })) if (line.trim() !== '') yield line;
}

export async function loadDataset(dir: string): Promise<Dataset> {
  const corpusFile = ['corpus.jsonl', 'corpus.jsonl.gz'].map((name) => path.join(dir, name)).find(existsSync);
  if (!corpusFile) throw new Error(`${dir} has no corpus.jsonl or corpus.jsonl.gz`);
  const corpus: BeirDoc[] = [];
  for await (const line of lines(corpusFile)) corpus.push(JSON.parse(line) as BeirDoc);
  const queries = new Map<string, string>();
  for (const name of (await readdir(dir)).filter((file) => /^queries.*\.jsonl(\.gz)?$/.test(file))) {
    for await (const line of lines(path.join(dir, name))) {
      const query = JSON.parse(line) as { _id: string; text: string };
      queries.set(query._id, query.text);
    }
  }
  const qrels: Qrels = new Map();
  const rows = (await readFile(path.join(dir, 'qrels', 'test.tsv'), 'utf8')).split('\n').slice(1);
  for (const row of rows) {
    const [queryId, docId, score] = row.trim().split('\t');
    if (!queryId || !docId || score === undefined) continue;
    if (!qrels.has(queryId)) qrels.set(queryId, new Map());
    qrels.get(queryId)!.set(docId, Number(score));
  }
  return { corpus, queries, qrels };
}

function toDocument(doc: BeirDoc): DocumentChunks {
  const title = doc.title ?? '';
  return {
    docId: doc._id,
    title,
    contentHash: `${title.length}:${doc.text.length}`,
    chunks: [{ id: `${doc._id}#0`, docId: doc._id, title, text: doc.text, position: 0 }],
  };
}

function raglineEngine(options: EmbeddedStoreOptions, name = 'ragline'): Engine {
  let store: EmbeddedStore | undefined;
  let dir = '';
  return {
    name,
    async build(corpus) {
      dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
      store = await EmbeddedStore.open(dir, options);
      // Batches of 200 as the ingestion activity sends them (RAGLINE_INGEST_BATCH), each persisted.
      for (let i = 0; i < corpus.length; i += 200) {
        await store.upsertDocuments('bench', corpus.slice(i, i + 200).map(toDocument));
      }
      // The first search builds the frozen postings; that is indexing work, so it is timed here.
      await store.search('bench', { query: 'warm up', topK: 1 });
    },
    async search(query, k) {
      const scores = new Map<string, number>();
      const response = await store!.search('bench', { query, topK: k });
      if (response.degradedReason) throw new Error(`${name} search degraded: ${response.degradedReason}`);
      for (const hit of response.hits) {
        // A document scores as its best chunk (one chunk per document here anyway).
        scores.set(hit.docId, Math.max(hit.score, scores.get(hit.docId) ?? 0));
      }
      return scores;
    },
    async dispose() {
      await store?.close();
      store = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Exact cosine over the documents' vectors (the query's vector from the embedding cache after the first run). */
function denseEngine(embedder: OpenAIEmbedder, hnsw = false): Engine {
  let index: DenseIndex | undefined;
  return {
    name: hnsw ? 'dense-hnsw' : 'dense',
    async build(corpus) {
      const vectors = await embedAll(
        embedder,
        corpus.map((doc) => documentEmbeddingText(doc.title ?? '', doc.text)),
        'document',
        'documents',
      );
      // dense-hnsw: the graph the store switches to above its threshold, built over these real vectors.
      index = new DenseIndex(embedder.dimensions, { annThreshold: hnsw ? 0 : Infinity });
      corpus.forEach((doc, i) => index!.put(doc._id, vectors[i]!));
      if (hnsw) index.buildAnn();
    },
    async search(query, k) {
      const [vector] = await embedder.embed([query], 'query');
      return new Map(index!.search(vector!, k).map(({ id, score }) => [id, score]));
    },
    async dispose() {
      index = undefined;
    },
  };
}

/**
 * QdrantStore against the server at QDRANT_URL, lexical through its sparse vectors, in a throwaway collection.
 * Queries and ingestion go over HTTP as a worker's do, so ms/query and docs/s include the round trips.
 */
/**
 * QdrantStore: sparse BM25 alone, or with an embedder its hybrid path (both legs prefetched, fused by `fusion`:
 * RRF with rrfK, or Qdrant's DBSF), over the same cached embeddings as the embedded store's hybrid.
 */
function qdrantEngine(
  url: string,
  apiKey: string | undefined,
  hybrid?: { embedder: OpenAIEmbedder; fusion: 'rrf' | 'dbsf'; rrfK?: number },
): Engine {
  const collection = `ragline_bench_${randomUUID().slice(0, 8)}`;
  let store: QdrantStore | undefined;
  return {
    name: hybrid ? `qdrant-hybrid-${hybrid.fusion}` : 'qdrant',
    async build(corpus) {
      store = new QdrantStore({
        url,
        apiKey,
        collection,
        ...(hybrid
          ? {
              embedder: hybrid.embedder,
              fusion: hybrid.fusion,
              ...(hybrid.rrfK === undefined ? {} : { rrfK: hybrid.rrfK }),
            }
          : {}),
      });
      // Batches of 200 as the ingestion activity sends them (RAGLINE_INGEST_BATCH).
      for (let i = 0; i < corpus.length; i += 200) {
        await store.upsertDocuments('bench', corpus.slice(i, i + 200).map(toDocument));
      }
    },
    async search(query, k) {
      const scores = new Map<string, number>();
      for (const hit of (await store!.search('bench', { query, topK: k })).hits) {
        scores.set(hit.docId, Math.max(hit.score, scores.get(hit.docId) ?? 0));
      }
      return scores;
    },
    async dispose() {
      await store?.close();
      store = undefined;
      await new QdrantClient({ url, apiKey, checkCompatibility: false }).deleteCollection(collection);
    },
  };
}

function miniSearchEngine(): Engine {
  let index: MiniSearch<BeirDoc> | undefined;
  return {
    name: 'minisearch',
    async build(corpus) {
      // MiniSearch's defaults: BM25+ (k 1.2, b 0.7, d 0.5), OR of terms, no stemming, no prefix/fuzzy.
      index = new MiniSearch<BeirDoc>({ idField: '_id', fields: ['title', 'text'] });
      index.addAll(corpus);
    },
    async search(query, k) {
      const results = index!.search(query).slice(0, k);
      return new Map(results.map((result) => [String(result.id), result.score]));
    },
    async dispose() {
      index = undefined;
    },
  };
}

function oramaEngine(): Engine {
  const schema = { id: 'string', title: 'string', text: 'string' } as const;
  let db: ReturnType<typeof create<typeof schema>> | undefined;
  return {
    name: 'orama',
    async build(corpus) {
      // Orama's defaults: BM25 (k 1.2, b 0.75, d 0.5), English tokenizer without stemming, threshold 1 (OR), and
      // prefix matching of every query term, which costs it most of its precision here (`exact: true` matched nothing).
      db = create({ schema });
      await insertMultiple(
        db,
        corpus.map((doc) => ({ id: doc._id, title: doc.title ?? '', text: doc.text })),
        1000,
      );
    },
    async search(query, k) {
      const results = await oramaSearch(db!, { term: query, properties: ['title', 'text'], limit: k });
      return new Map(results.hits.map((hit) => [hit.id, hit.score]));
    },
    async dispose() {
      db = undefined;
    },
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function measure(
  engine: Engine,
  dataset: Dataset,
  queryIds: string[],
  runs?: Map<string, Run>,
): Promise<EngineFigures> {
  const rssBefore = settledRssMb();
  const started = performance.now();
  await engine.build(dataset.corpus);
  const indexSeconds = (performance.now() - started) / 1000;
  const rssMb = settledRssMb() - rssBefore;
  for (const queryId of queryIds.slice(0, 20)) await engine.search(dataset.queries.get(queryId)!, 100);
  const run: Run = new Map();
  const timings: number[] = [];
  for (const queryId of queryIds) {
    const queryStarted = performance.now();
    run.set(queryId, await engine.search(dataset.queries.get(queryId)!, 100));
    timings.push(performance.now() - queryStarted);
  }
  await engine.dispose();
  runs?.set(engine.name, run);
  const at10 = evaluate(dataset.qrels, run, 10).mean;
  const at100 = evaluate(dataset.qrels, run, 100).mean;
  return {
    ndcg10: round(at10.ndcg),
    recall100: round(at100.recall),
    mrr10: round(at10.mrr),
    msPerQuery: round(median(timings), 3),
    indexSeconds: round(indexSeconds, 2),
    docsPerSecond: Math.round(dataset.corpus.length / indexSeconds),
    rssMb: Math.round(rssMb),
  };
}

function round(value: number, digits = 4): number {
  return Number(value.toFixed(digits));
}

function printTable(rows: Record<string, EngineFigures>): void {
  const columns: (keyof EngineFigures)[] = [
    'ndcg10',
    'recall100',
    'mrr10',
    'msPerQuery',
    'indexSeconds',
    'docsPerSecond',
    'rssMb',
  ];
  console.log(['engine'.padEnd(12), ...columns.map((column) => column.padStart(14))].join(''));
  for (const [name, figures] of Object.entries(rows)) {
    console.log([name.padEnd(12), ...columns.map((column) => String(figures[column]).padStart(14))].join(''));
  }
}

// Small deterministic PRNG so synthetic corpora are the same on every run.
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A Zipf(s = 1.07) sampler over `size` invented words, like word frequencies in English text. */
function zipfWords(size: number, random: () => number): () => string {
  const syllables = [
    'ka',
    'lo',
    'mi',
    'ne',
    'ru',
    'sa',
    'ti',
    'vo',
    'ze',
    'pa',
    'qui',
    'dor',
    'ban',
    'fel',
    'gri',
    'hom',
  ];
  const words = Array.from({ length: size }, (_, rank) => {
    let word = '';
    for (let n = rank + 1; n > 0; n = Math.floor(n / syllables.length)) word += syllables[n % syllables.length];
    return `${word}x`;
  });
  const cdf = new Float64Array(size);
  let total = 0;
  for (let rank = 0; rank < size; rank++) cdf[rank] = total += 1 / Math.pow(rank + 1, 1.07);
  return () => {
    const target = random() * total;
    let low = 0;
    let high = size - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cdf[mid]! < target) low = mid + 1;
      else high = mid;
    }
    return words[low]!;
  };
}

async function runSynthetic(chunks: number, queryCount: number): Promise<void> {
  const random = mulberry32(42);
  const word = zipfWords(100_000, random);
  const sentence = (length: number) => Array.from({ length }, word).join(' ');
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-synthetic-'));
  try {
    const rssBefore = settledRssMb();
    // Only the store's work is timed: generating the synthetic text is not indexing.
    let indexMs = 0;
    let started = performance.now();
    const store = await EmbeddedStore.open(dir);
    indexMs += performance.now() - started;
    const batch = 5000;
    for (let i = 0; i < chunks; i += batch) {
      const docs: DocumentChunks[] = [];
      for (let n = i; n < Math.min(i + batch, chunks); n++) {
        const title = sentence(3 + Math.floor(random() * 6));
        const text = sentence(20 + Math.floor(random() * 40));
        docs.push({
          docId: `s${n}`,
          title,
          contentHash: String(n),
          chunks: [{ id: `s${n}#0`, docId: `s${n}`, title, text, position: 0 }],
        });
      }
      started = performance.now();
      await store.upsertDocuments('synthetic', docs);
      indexMs += performance.now() - started;
    }
    started = performance.now();
    await store.search('synthetic', { query: word(), topK: 10 });
    const indexSeconds = (indexMs + performance.now() - started) / 1000;
    const rssMb = settledRssMb() - rssBefore;
    const timings: number[] = [];
    for (let q = 0; q < queryCount; q++) {
      const query = sentence(2 + Math.floor(random() * 4));
      const queryStarted = performance.now();
      await store.search('synthetic', { query, topK: 10 });
      timings.push(performance.now() - queryStarted);
    }
    await store.close();
    timings.sort((a, b) => a - b);
    const figures = {
      chunks,
      queries: queryCount,
      p50Ms: round(median(timings), 3),
      p95Ms: round(timings[Math.floor(timings.length * 0.95)] ?? 0, 3),
      indexSeconds: round(indexSeconds, 1),
      rssMb: Math.round(rssMb),
      totalRssMb: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
    console.log(`synthetic: ${chunks} chunks, Zipf words, queries of 2-5 words sampled from the same distribution`);
    console.log(JSON.stringify({ ragline: figures }));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      dataset: { type: 'string', default: path.join(projectRoot, '..', 'shared', 'datasets', 'scifact') },
      synthetic: { type: 'string' },
      queries: { type: 'string', default: '200' },
      only: { type: 'string' },
      k1: { type: 'string' },
      b: { type: 'string' },
      'title-weight': { type: 'string' },
      'title-b': { type: 'string' },
      'document-weight': { type: 'string' },
      'rm3-docs': { type: 'string' },
      'rm3-terms': { type: 'string' },
      'rm3-weight': { type: 'string' },
      fusion: { type: 'string' },
      'rrf-k': { type: 'string' },
      'dense-weight': { type: 'string' },
      normalisation: { type: 'string' },
      cv: { type: 'boolean', default: false },
      'cv-lexical': { type: 'boolean', default: false },
      'cv-feedback': { type: 'boolean', default: false },
      'cv-rm3': { type: 'boolean', default: false },
      'cv-joint': { type: 'boolean', default: false },
      'cv-fill': { type: 'boolean', default: false },
      'cv-sentences': { type: 'boolean', default: false },
      ...embedderOptions,
    },
  });
  if (values.synthetic) return runSynthetic(Number(values.synthetic), Number(values.queries));

  const num = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  const defined = <T extends object>(object: T) =>
    Object.fromEntries(Object.entries(object).filter(([, value]) => value !== undefined)) as Partial<T>;
  const options: EmbeddedStoreOptions = {
    bm25: defined({
      k1: num(values.k1),
      b: num(values.b),
      titleWeight: num(values['title-weight']),
      titleB: num(values['title-b']),
      documentWeight: num(values['document-weight']),
    }),
    feedback: defined({
      docs: num(values['rm3-docs']),
      terms: num(values['rm3-terms']),
      originalWeight: num(values['rm3-weight']),
    }),
  };
  const datasetDir = path.resolve(projectRoot, values.dataset);
  const dataset = await loadDataset(datasetDir);
  const queryIds = [...dataset.qrels.keys()].filter((id) => dataset.queries.has(id));
  console.log(`${path.basename(datasetDir)}: ${dataset.corpus.length} documents, ${queryIds.length} judged queries`);
  // With QDRANT_URL set, Qdrant runs in the same process over the same queries, beside the embedded store.
  const { QDRANT_URL, QDRANT_API_KEY } = loadConfig();
  const qdrant = QDRANT_URL ? [qdrantEngine(QDRANT_URL, QDRANT_API_KEY)] : [];
  const engines = [raglineEngine(options), ...qdrant, miniSearchEngine(), oramaEngine()];
  const embedder = embedderFromArgs(values);
  const fusion: Partial<FusionParams> = defined({
    kind: values.fusion as FusionKind | undefined,
    rrfK: num(values['rrf-k']),
    denseWeight: num(values['dense-weight']),
    normalisation: values.normalisation as ScoreNormalisation | undefined,
  });
  if (embedder) {
    // Fill (or read) the cache before anything is timed, so build and query figures are not the embedder's.
    await embedAll(embedder, [...dataset.queries.values()], 'query', 'queries');
    engines.push(
      denseEngine(embedder),
      denseEngine(embedder, true),
      raglineEngine({ ...options, embedder, fusion }, 'hybrid'),
    );
    if (QDRANT_URL) {
      engines.push(
        qdrantEngine(QDRANT_URL, QDRANT_API_KEY, { embedder, fusion: 'rrf', ...defined({ rrfK: fusion.rrfK }) }),
        qdrantEngine(QDRANT_URL, QDRANT_API_KEY, { embedder, fusion: 'dbsf' }),
      );
    }
  }
  const selected = engines.filter((engine) => !values.only || values.only.split(',').includes(engine.name));
  const runs = new Map<string, Run>();
  const results: Record<string, EngineFigures> = {};
  for (const engine of selected) results[engine.name] = await measure(engine, dataset, queryIds, runs);
  printTable(results);
  if (values.cv && runs.has('ragline') && runs.has('dense')) {
    crossValidateFusion(dataset.qrels, queryIds, runs.get('ragline')!, runs.get('dense')!);
  }
  if (values['cv-lexical']) await crossValidateLexical(dataset, queryIds);
  if (runs.has('dense') && runs.has('dense-hnsw')) {
    // The graph's recall of the exact top 10 on real embeddings, the figure the synthetic bench stands in for.
    let agreed = 0;
    for (const id of queryIds) {
      const top10 = (run: Run) => rankedList(run.get(id), 10).map(({ id: docId }) => docId);
      const exact = new Set(top10(runs.get('dense')!));
      agreed += top10(runs.get('dense-hnsw')!).filter((docId) => exact.has(docId)).length;
    }
    console.log(`dense-hnsw recall@10 against exact: ${round(agreed / (queryIds.length * 10))}`);
  }
  if (values['cv-feedback'] && embedder && runs.has('ragline')) {
    await crossValidateDenseFeedback(dataset, queryIds, runs.get('ragline')!, embedder);
  }
  if (values['cv-rm3'] && embedder) await crossValidateHybridRm3(dataset, queryIds, options, embedder);
  if (values['cv-joint'] && embedder) await crossValidateJoint(dataset, queryIds, embedder);
  if (values['cv-fill'] && embedder) await crossValidateFilledFusion(dataset, queryIds, embedder);
  if (values['cv-sentences'] && embedder && runs.has('ragline')) {
    await crossValidateSentences(dataset, queryIds, runs.get('ragline')!, embedder);
  }
  if (embedder) {
    await queryEmbeddingLatency(
      embedderFromArgs(values, { cache: false })!,
      [...dataset.queries.values()].slice(0, 50),
    );
  }
  console.log(JSON.stringify(results));
}

/** Two folds by alternating sorted query ids: deterministic, and both halves span the id range. */
/** Mean per-query figure over `ids`, rounded as the bench prints it. */
function meanOver(scores: Map<string, number>, ids: string[]): number {
  return round(ids.reduce((x, id) => x + scores.get(id)!, 0) / ids.length);
}

/** One configuration's mean over all queries and over each fold. */
function logFolds(label: string, scores: Map<string, number>, queryIds: string[]): void {
  const [a, b] = folds(queryIds);
  console.log(
    `${label}: all ${meanOver(scores, queryIds)}, fold A ${meanOver(scores, a)}, fold B ${meanOver(scores, b)}`,
  );
}

function folds(queryIds: string[]): [string[], string[]] {
  const sorted = [...queryIds].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b));
  return [sorted.filter((_, i) => i % 2 === 0), sorted.filter((_, i) => i % 2 === 1)];
}

/**
 * Picks the configuration with the best mean nDCG@10 on one fold and scores it on the other, both ways. The
 * cross-validated figure is the mean over all queries of their held-out scores; the full-split figure is the best
 * configuration chosen and scored on all queries, which is optimistic by construction.
 */
function tuneByCrossValidation<C>(
  label: string,
  configs: C[],
  describe: (config: C) => string,
  perQuery: (config: C) => Map<string, number>,
  queryIds: string[],
): { cv: number; full: number; fullConfig: string; foldConfigs: string[] } {
  const table = configs.map((config) => ({ config, scores: perQuery(config) }));
  const mean = (scores: Map<string, number>, ids: string[]) =>
    ids.reduce((sum, id) => sum + (scores.get(id) ?? 0), 0) / ids.length;
  const best = (ids: string[]) =>
    table.reduce((winner, row) => (mean(row.scores, ids) > mean(winner.scores, ids) ? row : winner));
  const [a, b] = folds(queryIds);
  const onA = best(a);
  const onB = best(b);
  const cv = (mean(onA.scores, b) * b.length + mean(onB.scores, a) * a.length) / queryIds.length;
  const full = best(queryIds);
  const result = {
    cv: round(cv),
    full: round(mean(full.scores, queryIds)),
    fullConfig: describe(full.config),
    foldConfigs: [describe(onA.config), describe(onB.config)],
  };
  console.log(`${label}: ${JSON.stringify(result)}`);
  return result;
}

function crossValidateFusion(qrels: Qrels, queryIds: string[], lexical: Run, dense: Run): void {
  const ranked = (scores: Map<string, number> | undefined) =>
    [...(scores ?? new Map<string, number>()).entries()]
      .map(([id, score]) => ({ id, score }))
      .sort((x, y) => y.score - x.score);
  const lists = new Map(queryIds.map((id) => [id, { lexical: ranked(lexical.get(id)), dense: ranked(dense.get(id)) }]));
  const perQuery = (params: FusionParams) =>
    new Map(
      queryIds.map((id) => {
        const { lexical: lex, dense: den } = lists.get(id)!;
        const fused = fuseHybrid(lex.slice(0, params.depth), den.slice(0, params.depth), params, 100);
        const scores = new Map(fused.map(({ id: docId, score }) => [docId, score]));
        return [id, evaluateQuery(qrels.get(id)!, scores, 10).ndcg];
      }),
    );
  const rrf = [1, 5, 10, 20, 30, 40, 60, 80, 100].map((rrfK): FusionParams => ({
    ...DEFAULT_FUSION,
    kind: 'rrf',
    rrfK,
  }));
  const weighted = Array.from({ length: 19 }, (_, i): FusionParams => ({
    ...DEFAULT_FUSION,
    kind: 'weighted',
    denseWeight: (i + 1) / 20,
  }));
  const describe = (p: FusionParams) =>
    (p.kind === 'rrf' ? `rrf k=${p.rrfK}` : `${p.normalisation} w=${p.denseWeight}`) +
    (p.depth === DEFAULT_FUSION.depth ? '' : ` depth=${p.depth}`);
  tuneByCrossValidation('cv rrf k', rrf, describe, perQuery, queryIds);
  tuneByCrossValidation('cv weighted w', weighted, describe, perQuery, queryIds);
  tuneByCrossValidation('cv fusion (kind and parameter)', [...rrf, ...weighted], describe, perQuery, queryIds);
  const shallower = [20, 50].flatMap((depth) => [...rrf, ...weighted].map((params) => ({ ...params, depth })));
  tuneByCrossValidation(
    'cv fusion (kind, parameter and depth 20/50/100)',
    [...rrf, ...weighted, ...shallower],
    describe,
    perQuery,
    queryIds,
  );
  const zScored = weighted.map((params): FusionParams => ({ ...params, normalisation: 'z-score' }));
  const minMax = weighted.map((params): FusionParams => ({ ...params, normalisation: 'min-max' }));
  tuneByCrossValidation('cv min-max weighted w', minMax, describe, perQuery, queryIds);
  tuneByCrossValidation('cv z-score weighted w', zScored, describe, perQuery, queryIds);
  tuneByCrossValidation(
    'cv fusion (rrf k, min-max or z-score w)',
    [...rrf, ...minMax, ...zScored],
    describe,
    perQuery,
    queryIds,
  );
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(`min-max by w: ${minMax.map((p) => `${p.denseWeight} ${all(perQuery(p))}`).join(', ')}`);
  console.log(`z-score by w: ${zScored.map((p) => `${p.denseWeight} ${all(perQuery(p))}`).join(', ')}`);
  const previousDefault: FusionParams = { ...DEFAULT_FUSION, denseWeight: 0.7, normalisation: 'min-max' };
  for (const params of [{ ...DEFAULT_FUSION, kind: 'rrf' as const }, DEFAULT_FUSION, previousDefault]) {
    const scores = perQuery(params);
    const [a, b] = folds(queryIds);
    const mean = (ids: string[]) => ids.reduce((sum, id) => sum + scores.get(id)!, 0) / ids.length;
    console.log(
      `fixed ${describe(params)}: all ${round(mean(queryIds))}, fold A ${round(mean(a))}, fold B ${round(mean(b))}`,
    );
  }
}

/**
 * Re-checks the BM25F defaults: a grid around them over one index, each configuration passed per search as the
 * improvement loop's shadow evaluation does (title b stays at its default 0.75, within noise in the tuning log).
 */
async function crossValidateLexical(dataset: Dataset, queryIds: string[]): Promise<void> {
  const configs: { k1: number; b: number; titleWeight: number }[] = [];
  for (const k1 of [0.9, 1.2, 1.5, 2]) {
    for (const b of [0.6, 0.75, 0.9]) for (const titleWeight of [1, 2, 3, 4]) configs.push({ k1, b, titleWeight });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const perConfig = new Map<string, Map<string, number>>();
  const describe = (bm25: (typeof configs)[number]) => JSON.stringify(bm25);
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const bm25 of configs) {
      const scores = new Map<string, number>();
      for (const id of queryIds) {
        const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: 100, bm25 });
        const run = new Map(hits.map((hit) => [hit.docId, hit.score]));
        scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
      }
      perConfig.set(describe(bm25), scores);
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  tuneByCrossValidation('cv lexical bm25', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
}

/** The corpus's vectors in an exact DenseIndex, and every query's unit vector (all from the embedding cache). */
async function denseSetup(
  dataset: Dataset,
  queryIds: string[],
  embedder: OpenAIEmbedder,
): Promise<{ index: DenseIndex; queryVectors: Map<string, Float32Array> }> {
  const vectors = await embedAll(
    embedder,
    dataset.corpus.map((doc) => documentEmbeddingText(doc.title ?? '', doc.text)),
    'document',
    'documents',
  );
  const index = new DenseIndex(embedder.dimensions, { annThreshold: Infinity });
  dataset.corpus.forEach((doc, i) => index.put(doc._id, vectors[i]!));
  const queryVectors = new Map<string, Float32Array>();
  for (const id of queryIds) {
    const [vector] = await embedder.embed([dataset.queries.get(id)!], 'query');
    queryVectors.set(id, normalised(vector!));
  }
  return { index, queryVectors };
}

const rankedList = (scores: Map<string, number> | undefined, depth: number) =>
  [...(scores ?? new Map<string, number>()).entries()]
    .map(([id, score]) => ({ id, score }))
    .sort((x, y) => y.score - x.score)
    .slice(0, depth);

/** Mean per-query nDCG@10 difference of two configurations, per fold, with its paired t statistic. */
function pairedDifference(label: string, a: Map<string, number>, b: Map<string, number>, queryIds: string[]): void {
  const diff = (ids: string[]) => ids.map((id) => a.get(id)! - b.get(id)!);
  const mean = (values: number[]) => values.reduce((x, y) => x + y, 0) / values.length;
  const all = diff(queryIds);
  const sd = Math.sqrt(all.reduce((x, d) => x + (d - mean(all)) ** 2, 0) / (all.length - 1));
  const [foldA, foldB] = folds(queryIds);
  console.log(
    `${label}: mean difference ${round(mean(all), 4)} (fold A ${round(mean(diff(foldA)), 4)}, fold B ` +
      `${round(mean(diff(foldB)), 4)}), paired t ${round(mean(all) / (sd / Math.sqrt(all.length)), 2)}, ` +
      `${all.filter((d) => d > 0).length} queries up, ${all.filter((d) => d < 0).length} down`,
  );
}

/**
 * Weighted z-score fusion where a candidate missing from one leg's top 100 gets its true score in that leg (its
 * cosine, or its BM25F over every matching document) instead of the leg's floor; each leg's mean and deviation still
 * come from its top 100, as in the store. The floor ranks a document the dense leg placed 101st like one it placed
 * last; filling removes that cliff (Bruch et al. TOIS 2023 discuss the same gap).
 */
async function crossValidateFilledFusion(
  dataset: Dataset,
  queryIds: string[],
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const legs = new Map<string, { lexicalAll: Map<string, number>; denseAll: Map<string, number> }>();
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const id of queryIds) {
      const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: dataset.corpus.length });
      const lexicalAll = new Map(hits.map((hit) => [hit.docId, hit.score]));
      const denseAll = new Map(
        index.searchExact(queryVectors.get(id)!, dataset.corpus.length).map(({ id: docId, score }) => [docId, score]),
      );
      legs.set(id, { lexicalAll, denseAll });
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  const stats = (all: Map<string, number>) => {
    const top = [...all.values()].sort((x, y) => y - x).slice(0, depth);
    const mean = top.reduce((x, y) => x + y, 0) / top.length;
    const sd = Math.sqrt(top.reduce((x, y) => x + (y - mean) ** 2, 0) / top.length) || 1;
    return { mean, sd, floor: Math.min((top[top.length - 1]! - mean) / sd, 0), cut: top[top.length - 1]! };
  };
  const configs = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6].flatMap((denseWeight) =>
    (['floor', 'fill'] as const).map((mode) => ({ denseWeight, mode })),
  );
  const describe = (c: (typeof configs)[number]) => `${c.mode} w=${c.denseWeight}`;
  const perConfig = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    for (const id of queryIds) {
      const { lexicalAll, denseAll } = legs.get(id)!;
      const lex = stats(lexicalAll);
      const den = stats(denseAll);
      const inTop = (all: Map<string, number>, cut: number, docId: string) => (all.get(docId) ?? -Infinity) >= cut;
      const candidates = new Set<string>();
      for (const [docId, score] of lexicalAll) if (score >= lex.cut) candidates.add(docId);
      for (const [docId, score] of denseAll) if (score >= den.cut) candidates.add(docId);
      const run = new Map<string, number>();
      for (const docId of candidates) {
        const z = (all: Map<string, number>, s: ReturnType<typeof stats>) =>
          config.mode === 'fill' || inTop(all, s.cut, docId)
            ? all.has(docId)
              ? (all.get(docId)! - s.mean) / s.sd
              : s.floor
            : s.floor;
        run.set(docId, (1 - config.denseWeight) * z(lexicalAll, lex) + config.denseWeight * z(denseAll, den));
      }
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    perConfig.set(describe(config), scores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `filled fusion by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  tuneByCrossValidation('cv filled fusion', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
  tuneByCrossValidation(
    'cv filled fusion (fill only)',
    configs.filter((c) => c.mode === 'fill'),
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
}

/**
 * BM25F's k1, b and title weight chosen together with the z-score fusion weight: the lexical settings that suit
 * BM25F alone need not suit it as one leg of two (a leg whose misses the other covers may do better more precise).
 * One lexical index, each BM25F configuration passed per search as crossValidateLexical does.
 */
async function crossValidateJoint(dataset: Dataset, queryIds: string[], embedder: OpenAIEmbedder): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const denseLists = new Map(queryIds.map((id) => [id, index.searchExact(queryVectors.get(id)!, depth)]));
  const lexicalConfigs: { k1: number; b: number; titleWeight: number }[] = [];
  for (const k1 of [0.9, 1.2, 1.5, 2]) {
    for (const b of [0.6, 0.75, 0.9])
      for (const titleWeight of [1, 2, 3, 4]) lexicalConfigs.push({ k1, b, titleWeight });
  }
  const weights = [0.3, 0.4, 0.5, 0.6];
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-bench-'));
  const store = await EmbeddedStore.open(dir);
  const perConfig = new Map<string, Map<string, number>>();
  const describe = (c: { bm25: (typeof lexicalConfigs)[number]; denseWeight: number }) =>
    `${JSON.stringify(c.bm25)} w=${c.denseWeight}`;
  try {
    for (let i = 0; i < dataset.corpus.length; i += 1000) {
      await store.upsertDocuments('bench', dataset.corpus.slice(i, i + 1000).map(toDocument));
    }
    for (const bm25 of lexicalConfigs) {
      const lexicalLists = new Map<string, { id: string; score: number }[]>();
      for (const id of queryIds) {
        const { hits } = await store.search('bench', { query: dataset.queries.get(id)!, topK: depth, bm25 });
        lexicalLists.set(
          id,
          hits.map((hit) => ({ id: hit.docId, score: hit.score })),
        );
      }
      for (const denseWeight of weights) {
        const scores = new Map<string, number>();
        for (const id of queryIds) {
          const params = { ...DEFAULT_FUSION, denseWeight };
          const fused = fuseHybrid(lexicalLists.get(id)!, denseLists.get(id)!, params, 100);
          const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
          scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
        }
        perConfig.set(describe({ bm25, denseWeight }), scores);
      }
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  const configs = lexicalConfigs.flatMap((bm25) => weights.map((denseWeight) => ({ bm25, denseWeight })));
  const chosen = tuneByCrossValidation(
    'cv joint bm25f + z-score w',
    configs,
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
  const defaults = describe({ bm25: { k1: 1.2, b: 0.75, titleWeight: 3 }, denseWeight: 0.5 });
  pairedDifference(
    `${chosen.fullConfig} vs defaults`,
    perConfig.get(chosen.fullConfig)!,
    perConfig.get(defaults)!,
    queryIds,
  );
}

/**
 * RM3 on the lexical leg of the hybrid: alone it always lost to plain BM25F here (README), but the dense leg may
 * absorb its drift while its expansion terms add recall. Each configuration builds its own lexical index.
 */
async function crossValidateHybridRm3(
  dataset: Dataset,
  queryIds: string[],
  options: EmbeddedStoreOptions,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const denseLists = new Map(queryIds.map((id) => [id, index.searchExact(queryVectors.get(id)!, depth)]));
  const configs = [
    { docs: 0, terms: 0, originalWeight: 1 },
    ...[3, 5, 10].flatMap((docs) =>
      [10, 20].flatMap((terms) => [0.5, 0.7, 0.85].map((originalWeight) => ({ docs, terms, originalWeight }))),
    ),
  ];
  const describe = (c: (typeof configs)[number]) => (c.docs === 0 ? 'no rm3' : JSON.stringify(c));
  const perConfig = new Map<string, Map<string, number>>();
  const lines: string[] = [];
  for (const feedback of configs) {
    const engine = raglineEngine({ ...options, feedback }, 'rm3');
    await engine.build(dataset.corpus);
    const hybrid = new Map<string, number>();
    let lexicalSum = 0;
    for (const id of queryIds) {
      const lexical = await engine.search(dataset.queries.get(id)!, depth);
      lexicalSum += evaluateQuery(dataset.qrels.get(id)!, lexical, 10).ndcg;
      const fused = fuseHybrid(rankedList(lexical, depth), denseLists.get(id)!, DEFAULT_FUSION, 100);
      const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
      hybrid.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    await engine.dispose();
    perConfig.set(describe(feedback), hybrid);
    const all = [...hybrid.values()].reduce((x, y) => x + y, 0) / queryIds.length;
    lines.push(`${describe(feedback)} lexical ${round(lexicalSum / queryIds.length)} hybrid ${round(all)}`);
  }
  console.log(`hybrid rm3 by config: ${lines.join('; ')}`);
  const chosen = tuneByCrossValidation(
    'cv hybrid rm3',
    configs,
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
  pairedDifference(
    `${chosen.fullConfig} vs no rm3`,
    perConfig.get(chosen.fullConfig)!,
    perConfig.get('no rm3')!,
    queryIds,
  );
}

/**
 * Dense pseudo-relevance feedback (Rocchio): the query vector plus β × the mean vector of the top `docs` documents of
 * the default hybrid ranking, searched again and fused again with the same lexical leg. Needs no new embeddings.
 * β = 0 is the default hybrid itself, so the cross-validation can choose "no feedback"; the fusion weight is tuned
 * jointly, since a sharper dense leg may deserve more weight.
 */
async function crossValidateDenseFeedback(
  dataset: Dataset,
  queryIds: string[],
  lexical: Run,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const lexicalLists = new Map(queryIds.map((id) => [id, rankedList(lexical.get(id), depth)]));
  const firstPass = new Map(
    queryIds.map((id) => [
      id,
      fuseHybrid(lexicalLists.get(id)!, index.searchExact(queryVectors.get(id)!, depth), DEFAULT_FUSION, depth),
    ]),
  );
  interface Feedback {
    beta: number;
    docs: number;
    denseWeight: number;
  }
  const configs: Feedback[] = [];
  for (const denseWeight of [0.4, 0.5, 0.6]) {
    configs.push({ beta: 0, docs: 0, denseWeight });
    for (const beta of [0.25, 0.5, 1, 2]) for (const docs of [3, 5, 10]) configs.push({ beta, docs, denseWeight });
  }
  const describe = (c: Feedback) => (c.beta === 0 ? `no feedback, w=${c.denseWeight}` : JSON.stringify(c));
  const perConfig = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    for (const id of queryIds) {
      const query = Float32Array.from(queryVectors.get(id)!);
      for (const { id: docId } of firstPass.get(id)!.slice(0, config.docs)) {
        const vector = index.get(docId)!;
        for (let d = 0; d < query.length; d++) query[d]! += (config.beta / config.docs) * vector[d]!;
      }
      const params = { ...DEFAULT_FUSION, denseWeight: config.denseWeight };
      const fused = fuseHybrid(lexicalLists.get(id)!, index.searchExact(normalised(query), depth), params, 100);
      const run = new Map(fused.map(({ id: docId, score }) => [docId, score]));
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, run, 10).ndcg);
    }
    perConfig.set(describe(config), scores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `dense feedback by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  logFolds(
    'default hybrid',
    perConfig.get(describe({ beta: 0, docs: 0, denseWeight: DEFAULT_FUSION.denseWeight }))!,
    queryIds,
  );
  tuneByCrossValidation('cv dense feedback', configs, describe, (c) => perConfig.get(describe(c))!, queryIds);
  tuneByCrossValidation(
    'cv dense feedback (w fixed 0.5)',
    configs.filter((c) => c.denseWeight === 0.5),
    describe,
    (c) => perConfig.get(describe(c))!,
    queryIds,
  );
}

/**
 * Sentence-level dense scoring ("MaxP", Dai & Callan 2019; "small-to-big"): a SciFact claim usually restates one
 * rationale sentence, and one vector for the whole abstract dilutes it. Every abstract sentence (splitSentences,
 * plain text, passage mode) is embedded once through the cache; a document's dense score is then
 * (1 - α) × cos(query, title + abstract) + α × S, where S is one of bench/sentence-dense.ts's scorings (best
 * sentence, best two, best window of two or three). The top 100 by that score are fused with the same lexical top 100
 * as the store does (z-score, weight w); or ("legs") the abstract and sentence scores are two dense lists, z-scored
 * and weighted apart (w(1 - α), wα). α = 0 is today's hybrid, so the cross-validation can choose it. Not kept: the
 * dense leg improves held out, the hybrid does not (lib/retrieval/README.md, "SciFact"). About 35 minutes of
 * embedding the first time (44,618 sentences on 2 cores).
 */
async function crossValidateSentences(
  dataset: Dataset,
  queryIds: string[],
  lexical: Run,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const perDocument = dataset.corpus.map((doc) => splitSentences(doc.text));
  const texts = perDocument.flat();
  const started = performance.now();
  const sentenceVectors = new SentenceVectors(
    await embedAll(embedder, texts, 'document', 'sentences', 64),
    perDocument.map((sentences) => sentences.length),
    embedder.dimensions,
  );
  console.log(
    `sentences: ${texts.length} over ${dataset.corpus.length} documents ` +
      `(${round((performance.now() - started) / 1000, 1)} s to load or embed)`,
  );
  type Scoring = SentenceScoring;
  const scorings = SENTENCE_SCORINGS;
  const features = new Map<string, { abstract: Float32Array } & Record<Scoring, Float32Array>>();
  for (const id of queryIds) {
    const query = queryVectors.get(id)!;
    const abstractById = new Map(index.searchExact(query, dataset.corpus.length).map((m) => [m.id, m.score]));
    const abstract = Float32Array.from(dataset.corpus, (doc) => abstractById.get(doc._id)!);
    features.set(id, { abstract, ...sentenceVectors.scores(query) });
  }
  interface SentenceConfig {
    scoring: Scoring;
    alpha: number;
    denseWeight: number;
    /** `cosine`: one dense leg of mixed cosines; `legs`: abstract and sentence legs z-scored and fused apart. */
    combine: 'cosine' | 'legs';
  }
  const configs: SentenceConfig[] = [];
  for (const denseWeight of [0.4, 0.5, 0.6]) {
    configs.push({ scoring: 'max', alpha: 0, denseWeight, combine: 'cosine' });
    for (const scoring of scorings) {
      for (const alpha of [0.25, 0.5, 0.75, 1]) configs.push({ scoring, alpha, denseWeight, combine: 'cosine' });
      for (const alpha of [0.25, 0.5, 0.75]) configs.push({ scoring, alpha, denseWeight, combine: 'legs' });
    }
  }
  const describe = (c: SentenceConfig) =>
    c.alpha === 0
      ? `abstract only, w=${c.denseWeight}`
      : `${c.combine === 'legs' ? 'legs ' : ''}${c.scoring} α=${c.alpha} w=${c.denseWeight}`;
  const top = (scores: Float32Array) =>
    dataset.corpus
      .map((doc, d) => ({ id: doc._id, score: scores[d]! }))
      .sort((x, y) => y.score - x.score)
      .slice(0, depth);
  const denseList = (id: string, c: SentenceConfig) => {
    const f = features.get(id)!;
    const sentence = f[c.scoring];
    return top(f.abstract.map((abstract, d) => (1 - c.alpha) * abstract + c.alpha * sentence[d]!));
  };
  const lexicalLists = new Map(queryIds.map((id) => [id, rankedList(lexical.get(id), depth)]));
  const perConfig = new Map<string, Map<string, number>>();
  // The dense leg alone, per query, for the cosine-mix configurations (w plays no part there; those at 0.5 stand).
  const denseAlone = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    const denseScores = new Map<string, number>();
    for (const id of queryIds) {
      if (config.combine === 'legs') {
        const f = features.get(id)!;
        const fused = fuseWeightedLegs(
          [
            { list: lexicalLists.get(id)!, weight: 1 - config.denseWeight },
            { list: top(f.abstract), weight: config.denseWeight * (1 - config.alpha) },
            { list: top(f[config.scoring]), weight: config.denseWeight * config.alpha },
          ],
          'z-score',
        );
        scores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(fused.map((m) => [m.id, m.score])), 10).ndcg);
        continue;
      }
      const dense = denseList(id, config);
      if (config.denseWeight === 0.5) {
        denseScores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(dense.map((m) => [m.id, m.score])), 10).ndcg);
      }
      const fused = fuseHybrid(
        lexicalLists.get(id)!,
        dense,
        { ...DEFAULT_FUSION, denseWeight: config.denseWeight },
        100,
      );
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(fused.map((m) => [m.id, m.score])), 10).ndcg);
    }
    perConfig.set(describe(config), scores);
    if (config.denseWeight === 0.5 && config.combine === 'cosine') denseAlone.set(describe(config), denseScores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `sentence dense leg alone (nDCG@10): ${[...denseAlone].map(([c, scores]) => `${c} ${all(scores)}`).join('; ')}`,
  );
  const aloneConfigs = configs.filter((c) => c.denseWeight === 0.5 && c.combine === 'cosine');
  const alone = tuneByCrossValidation(
    'cv sentences, dense leg alone (scoring, α)',
    aloneConfigs,
    describe,
    (c) => denseAlone.get(describe(c))!,
    queryIds,
  );
  pairedDifference(
    `dense alone: ${alone.fullConfig} vs abstract only`,
    denseAlone.get(alone.fullConfig)!,
    denseAlone.get(describe(aloneConfigs[0]!))!,
    queryIds,
  );
  console.log(
    `sentence hybrid by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  const baseline = perConfig.get(
    describe({ scoring: 'max', alpha: 0, denseWeight: DEFAULT_FUSION.denseWeight, combine: 'cosine' }),
  )!;
  logFolds('default hybrid', baseline, queryIds);
  const pick = (label: string, subset: SentenceConfig[]) => {
    const chosen = tuneByCrossValidation(label, subset, describe, (c) => perConfig.get(describe(c))!, queryIds);
    pairedDifference(`${chosen.fullConfig} vs default hybrid`, perConfig.get(chosen.fullConfig)!, baseline, queryIds);
  };
  pick('cv sentences (scoring, α, w)', configs);
  pick(
    'cv sentences (scoring, α; w 0.5)',
    configs.filter((c) => c.denseWeight === 0.5),
  );
  for (const scoring of scorings) {
    pick(
      `cv sentences (${scoring}: α; w 0.5)`,
      configs.filter(
        (c) => c.denseWeight === 0.5 && (c.alpha === 0 || (c.scoring === scoring && c.combine === 'cosine')),
      ),
    );
  }
  pick(
    'cv sentences (cosine mix only: scoring, α, w)',
    configs.filter((c) => c.combine === 'cosine'),
  );
  pick(
    'cv sentences (separate legs only: scoring, α, w)',
    configs.filter((c) => c.combine === 'legs' || c.alpha === 0),
  );
}

/** What a hybrid query adds over a lexical one: embedding the query, measured without the cache. */
async function queryEmbeddingLatency(embedder: OpenAIEmbedder, queries: string[]): Promise<void> {
  const timings: number[] = [];
  for (const query of queries) {
    const started = performance.now();
    await embedder.embed([query], 'query');
    timings.push(performance.now() - started);
  }
  console.log(`query embedding: p50 ${round(median(timings), 1)} ms over ${timings.length} uncached queries`);
}
