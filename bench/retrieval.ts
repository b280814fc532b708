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
 *
 * This file only reads the flags and runs the experiments: the data is in bench/datasets/ (BEIR loading, the
 * synthetic corpus), one adapter per engine in bench/engines/, one module per experiment in bench/experiments/.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../lib/config.js';
import type { EmbeddedStoreOptions } from '../lib/retrieval/embedded-store.js';
import type { FusionKind, FusionParams, ScoreNormalisation } from '../lib/retrieval/fusion.js';
import type { Run } from '../lib/retrieval/ir-metrics.js';
import { loadDataset } from './datasets/beir.js';
import { embedAll, embedderFromArgs, embedderOptions } from './embeddings.js';
import { denseEngine } from './engines/dense.js';
import { miniSearchEngine } from './engines/minisearch.js';
import { oramaEngine } from './engines/orama.js';
import { qdrantEngine } from './engines/qdrant.js';
import { raglineEngine } from './engines/ragline.js';
import { denseHnswRecall, measureEngine, printTable, type EngineFigures } from './experiments/compare-engines.js';
import { crossValidateDenseFeedback } from './experiments/cv-dense-feedback.js';
import { crossValidateFilledFusion } from './experiments/cv-filled-fusion.js';
import { crossValidateFusion } from './experiments/cv-fusion.js';
import { crossValidateHybridRm3 } from './experiments/cv-hybrid-rm3.js';
import { crossValidateJoint } from './experiments/cv-joint.js';
import { crossValidateLexical } from './experiments/cv-lexical.js';
import { crossValidateSentences } from './experiments/cv-sentences.js';
import { queryEmbeddingLatency } from './experiments/query-embedding.js';
import { runSynthetic } from './experiments/synthetic.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

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
  for (const engine of selected) results[engine.name] = await measureEngine(engine, dataset, queryIds, runs);
  printTable(results);
  if (values.cv && runs.has('ragline') && runs.has('dense')) {
    crossValidateFusion(dataset.qrels, queryIds, runs.get('ragline')!, runs.get('dense')!);
  }
  if (values['cv-lexical']) await crossValidateLexical(dataset, queryIds);
  if (runs.has('dense') && runs.has('dense-hnsw')) denseHnswRecall(runs, queryIds);
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
