/**
 * Retrieval on the sample corpus, parsed and chunked as `ragline ingest` does: nDCG@5, Recall@5 and MRR@5 over
 * its ground-truth questions, and whether the right document comes first for the ten seed questions, lexical
 * and (with an embedder) hybrid.
 *
 *   npm run bench -- sample [--embedder-url URL --embedding-model NAME] [--fusion rrf|weighted] [--rrf-k N]
 *                           [--normalisation z-score|min-max]
 *                           [--dense-weight W] [--cv] [--latency] [--sentences]
 *
 * `--latency` times every question through the lexical and the hybrid store with the query embedding NOT cached
 * (documents still come from the cache), and prints the p50 each adds: what a hybrid query costs over a lexical
 * one, embedding plus fusion, with the embedder wherever --embedder-url points (loopback here).
 * `--cv` chooses the fusion (kind and parameter) by two-fold cross-validation over the ground-truth questions
 * (odd and even ids) on nDCG@5, and prints the held-out figure beside the optimistic full-set one.
 * `--sentences` measures a dense leg that also scores each chunk by its best-matching sentences (sentenceExperiment).
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { DocumentChunks } from '../lib/domain.js';
import { chunkDocument } from '../lib/ingest/chunker.js';
import { discoverSources, readDocuments } from '../lib/ingest/sources.js';
import { EmbeddedStore, type EmbeddedStoreOptions } from '../lib/retrieval/embedded-store.js';
import { normalised } from '../lib/retrieval/dense-index.js';
import { documentEmbeddingText, type Embedder, type EmbeddingPurpose } from '../lib/retrieval/embedder.js';
import {
  DEFAULT_FUSION,
  fuseHybrid,
  type FusionKind,
  type FusionParams,
  type Scored,
  type ScoreNormalisation,
} from '../lib/retrieval/fusion.js';
import { evaluate, rankDocuments, type Qrels, type Run } from '../lib/retrieval/ir-metrics.js';
import { embedderFromArgs, embedderOptions } from './embeddings.js';
import { SENTENCE_SCORINGS, SentenceVectors, splitSentences, type SentenceScoring } from './sentence-dense.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const corpusDir = path.join(projectRoot, 'sample-corpus');

/**
 * Ten questions a new user asks first, with the document that answers each. The first two are the misses the
 * issue reported (lexical ranked `webhooks` and `enterprise-plan` 4th); the other eight are common first
 * questions, one per area of the product.
 */
export const SEED_QUESTIONS: { query: string; doc: string }[] = [
  { query: 'How do I integrate with webhooks?', doc: 'webhooks' },
  { query: "What's included in the enterprise plan?", doc: 'enterprise-plan' },
  { query: 'How do I reset my password?', doc: 'password-reset' },
  { query: 'What are the API rate limits?', doc: 'api-rate-limits' },
  { query: 'How do I set up single sign-on?', doc: 'single-sign-on' },
  { query: 'How do I export my data?', doc: 'data-export' },
  { query: 'How do I enable two-factor authentication?', doc: 'two-factor-authentication' },
  { query: 'How do I rotate an API key?', doc: 'api-key-rotation' },
  { query: 'How do I cancel my subscription?', doc: 'cancel-subscription' },
  { query: 'How do I connect Lumen to Slack?', doc: 'integrations-slack' },
];

interface GroundTruth {
  id: string;
  query: string;
  relevant: string[];
}

export async function sampleDocuments(chunkChars = 800): Promise<DocumentChunks[]> {
  const { files } = await discoverSources([path.join(corpusDir, 'docs')]);
  const docs: DocumentChunks[] = [];
  for (const file of files) {
    for (const doc of (await readDocuments(file, 0, 1)).documents) docs.push(chunkDocument(doc, chunkChars));
  }
  return docs;
}

async function documentScores(store: EmbeddedStore, query: string): Promise<Map<string, number>> {
  const best = new Map<string, number>();
  const response = await store.search('default', { query, topK: 20 });
  if (response.degradedReason) throw new Error(`search degraded: ${response.degradedReason}`);
  // Documents, not chunks, are judged: a document scores as its best chunk.
  for (const hit of response.hits) best.set(hit.docId, Math.max(best.get(hit.docId) ?? -Infinity, hit.score));
  return best;
}

async function measure(options: EmbeddedStoreOptions, docs: DocumentChunks[], questions: GroundTruth[]) {
  const { perQuery: _perQuery, ...figures } = await measureWithPerQuery(options, docs, questions);
  return figures;
}

async function measureWithPerQuery(options: EmbeddedStoreOptions, docs: DocumentChunks[], questions: GroundTruth[]) {
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-sample-'));
  const store = await EmbeddedStore.open(dir, options);
  try {
    await store.upsertDocuments('default', docs);
    const qrels: Qrels = new Map();
    const run: Run = new Map();
    for (const q of questions) {
      qrels.set(q.id, new Map(q.relevant.map((docId, i) => [docId, i === 0 ? 2 : 1])));
      run.set(q.id, await documentScores(store, q.query));
    }
    const evaluation = evaluate(qrels, run, 5);
    const at5 = evaluation.mean;
    const seed = [];
    for (const { query, doc } of SEED_QUESTIONS) {
      const ranked = rankDocuments(await documentScores(store, query));
      seed.push({ query, expected: doc, rank: ranked.indexOf(doc) + 1 || null, top: ranked[0] });
    }
    return {
      ndcg5: Number(at5.ndcg.toFixed(4)),
      recall5: Number(at5.recall.toFixed(4)),
      mrr5: Number(at5.mrr.toFixed(4)),
      seedFirst: seed.filter((row) => row.rank === 1).length,
      seedMisses: seed.filter((row) => row.rank !== 1),
      perQuery: new Map([...evaluation.perQuery].map(([id, metrics]) => [id, metrics.ndcg])),
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      ...embedderOptions,
      fusion: { type: 'string' },
      'rrf-k': { type: 'string' },
      'dense-weight': { type: 'string' },
      normalisation: { type: 'string' },
      cv: { type: 'boolean', default: false },
      latency: { type: 'boolean', default: false },
      sentences: { type: 'boolean', default: false },
    },
  });
  const questions = readFileSync(path.join(corpusDir, 'ground-truth.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as GroundTruth);
  const docs = await sampleDocuments();
  console.log(`sample corpus: ${docs.length} documents, ${questions.length} questions, ${SEED_QUESTIONS.length} seed`);
  const results: Record<string, unknown> = { lexical: await measure({}, docs, questions) };
  const embedder = embedderFromArgs(values);
  if (embedder) {
    const fusion = {
      ...(values.fusion ? { kind: values.fusion as FusionKind } : {}),
      ...(values['rrf-k'] ? { rrfK: Number(values['rrf-k']) } : {}),
      ...(values['dense-weight'] ? { denseWeight: Number(values['dense-weight']) } : {}),
      ...(values.normalisation ? { normalisation: values.normalisation as ScoreNormalisation } : {}),
    };
    results['hybrid'] = await measure({ embedder, fusion }, docs, questions);
    if (values.cv) await crossValidate(embedder, docs, questions);
    if (values.sentences) await sentenceExperiment(embedder, docs, questions);
    if (values.latency) {
      const uncached = embedderFromArgs(values, { cache: false })!;
      await measureLatency(documentsCachedOnly(embedder, uncached), fusion, docs, questions);
    }
  }
  console.log(JSON.stringify(results));
}

async function crossValidate(
  embedder: NonNullable<ReturnType<typeof embedderFromArgs>>,
  docs: DocumentChunks[],
  questions: GroundTruth[],
): Promise<void> {
  const configs: Partial<FusionParams>[] = [
    ...[1, 5, 10, 20, 40, 60, 100].map((rrfK) => ({ kind: 'rrf' as const, rrfK })),
    ...(['min-max', 'z-score'] as const).flatMap((normalisation) =>
      [0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1].map((denseWeight) => ({
        kind: 'weighted' as const,
        denseWeight,
        normalisation,
      })),
    ),
  ];
  const describe = (c: Partial<FusionParams>) =>
    c.kind === 'rrf' ? `rrf k=${c.rrfK}` : `${c.normalisation} w=${c.denseWeight}`;
  const table: { fusion: Partial<FusionParams>; perQuery: Map<string, number> }[] = [];
  for (const fusion of configs) {
    const { perQuery, ndcg5, seedFirst } = await measureWithPerQuery({ embedder, fusion }, docs, questions);
    table.push({ fusion, perQuery });
    console.log(`${describe(fusion).padEnd(16)} nDCG@5 ${ndcg5}  seed first ${seedFirst}/10`);
  }
  const ids = questions.map((q) => q.id);
  const halves = [ids.filter((_, i) => i % 2 === 0), ids.filter((_, i) => i % 2 === 1)] as const;
  const mean = (scores: Map<string, number>, subset: readonly string[]) =>
    subset.reduce((sum, id) => sum + (scores.get(id) ?? 0), 0) / subset.length;
  const best = (subset: readonly string[]) =>
    table.reduce((winner, row) => (mean(row.perQuery, subset) > mean(winner.perQuery, subset) ? row : winner));
  const [a, b] = halves;
  const onA = best(a);
  const onB = best(b);
  const cv = (mean(onA.perQuery, b) * b.length + mean(onB.perQuery, a) * a.length) / ids.length;
  const full = best(ids);
  console.log(
    `cv fusion: ${JSON.stringify({
      cvNdcg5: Number(cv.toFixed(4)),
      fullNdcg5: Number(mean(full.perQuery, ids).toFixed(4)),
      full: describe(full.fusion),
      folds: [describe(onA.fusion), describe(onB.fusion)],
    })}`,
  );
}

/**
 * The SciFact `--cv-sentences` experiment on the sample corpus, at chunk level as the store searches: a chunk's dense
 * score is (1 - α) × cos(query, title + chunk) + α × its sentence score (bench/sentence-dense.ts); the top 100 by it
 * are fused with the lexical store's top 100 chunks (z-score, weight w) and a document scores as its best chunk in
 * the fused top 20, as `documentScores` does. α = 0 reproduces the hybrid store, which the first line checks.
 */
async function sentenceExperiment(
  embedder: NonNullable<ReturnType<typeof embedderFromArgs>>,
  docs: DocumentChunks[],
  questions: GroundTruth[],
): Promise<void> {
  const chunks = docs.flatMap((doc) => doc.chunks);
  const chunkVectors = (
    await embedder.embed(
      chunks.map((chunk) => documentEmbeddingText(chunk.title, chunk.text)),
      'document',
    )
  ).map(normalised);
  const perChunk = chunks.map((chunk) => splitSentences(chunk.text));
  const sentenceVectors = new SentenceVectors(
    await embedder.embed(perChunk.flat(), 'document'),
    perChunk.map((sentences) => sentences.length),
    embedder.dimensions,
  );
  console.log(`sentences: ${perChunk.flat().length} over ${chunks.length} chunks`);
  const dir = await mkdtemp(path.join(tmpdir(), 'ragline-sample-'));
  const store = await EmbeddedStore.open(dir, {});
  const depth = DEFAULT_FUSION.depth;
  const all = [
    ...questions.map((q) => ({ id: q.id, query: q.query })),
    ...SEED_QUESTIONS.map((q, i) => ({ id: `seed-${i}`, query: q.query })),
  ];
  const legs = new Map<string, { lexical: Scored[]; abstract: Float32Array } & Record<SentenceScoring, Float32Array>>();
  try {
    await store.upsertDocuments('default', docs);
    for (const { id, query } of all) {
      const { hits } = await store.search('default', { query, topK: depth });
      const [vector] = await embedder.embed([query], 'query');
      const unit = normalised(vector!);
      const abstract = Float32Array.from(chunkVectors, (chunkVector) => {
        let dot = 0;
        for (let k = 0; k < unit.length; k++) dot += unit[k]! * chunkVector[k]!;
        return dot;
      });
      legs.set(id, {
        lexical: hits.map((hit) => ({ id: hit.chunkId, score: hit.score })),
        abstract,
        ...sentenceVectors.scores(unit),
      });
    }
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
  const docOf = new Map(chunks.map((chunk) => [chunk.id, chunk.docId]));
  interface Config {
    scoring: SentenceScoring;
    alpha: number;
    denseWeight: number;
  }
  const configs: Config[] = [];
  for (const denseWeight of [0.4, 0.5, 0.6]) {
    configs.push({ scoring: 'max', alpha: 0, denseWeight });
    for (const scoring of SENTENCE_SCORINGS) {
      for (const alpha of [0.25, 0.5, 0.75, 1]) configs.push({ scoring, alpha, denseWeight });
    }
  }
  const describe = (c: Config) =>
    c.alpha === 0 ? `chunk only, w=${c.denseWeight}` : `${c.scoring} α=${c.alpha} w=${c.denseWeight}`;
  const documentRun = (id: string, c: Config) => {
    const leg = legs.get(id)!;
    const sentence = leg[c.scoring];
    const dense = chunks
      .map((chunk, i) => ({ id: chunk.id, score: (1 - c.alpha) * leg.abstract[i]! + c.alpha * sentence[i]! }))
      .sort((x, y) => y.score - x.score)
      .slice(0, depth);
    const fused = fuseHybrid(leg.lexical, dense, { ...DEFAULT_FUSION, denseWeight: c.denseWeight }, 20);
    const best = new Map<string, number>();
    for (const { id: chunkId, score } of fused) {
      const docId = docOf.get(chunkId)!;
      best.set(docId, Math.max(best.get(docId) ?? -Infinity, score));
    }
    return best;
  };
  const qrels: Qrels = new Map(
    questions.map((q) => [q.id, new Map(q.relevant.map((docId, i) => [docId, i === 0 ? 2 : 1]))]),
  );
  const table = configs.map((config) => {
    const run: Run = new Map(questions.map((q) => [q.id, documentRun(q.id, config)]));
    const evaluation = evaluate(qrels, run, 5);
    const seedFirst = SEED_QUESTIONS.filter(
      (q, i) => rankDocuments(documentRun(`seed-${i}`, config))[0] === q.doc,
    ).length;
    const perQuery = new Map([...evaluation.perQuery].map(([id, metrics]) => [id, metrics.ndcg]));
    console.log(`${describe(config).padEnd(20)} nDCG@5 ${evaluation.mean.ndcg.toFixed(4)}  seed first ${seedFirst}/10`);
    return { config, perQuery };
  });
  const ids = questions.map((q) => q.id);
  const [a, b] = [ids.filter((_, i) => i % 2 === 0), ids.filter((_, i) => i % 2 === 1)] as const;
  const mean = (scores: Map<string, number>, subset: readonly string[]) =>
    subset.reduce((sum, id) => sum + (scores.get(id) ?? 0), 0) / subset.length;
  const crossValidated = (label: string, rows: typeof table) => {
    const best = (subset: readonly string[]) =>
      rows.reduce((winner, row) => (mean(row.perQuery, subset) > mean(winner.perQuery, subset) ? row : winner));
    const onA = best(a);
    const onB = best(b);
    const full = best(ids);
    const cv = (mean(onA.perQuery, b) * b.length + mean(onB.perQuery, a) * a.length) / ids.length;
    console.log(
      `${label}: ${JSON.stringify({
        cvNdcg5: Number(cv.toFixed(4)),
        fullNdcg5: Number(mean(full.perQuery, ids).toFixed(4)),
        full: describe(full.config),
        folds: [describe(onA.config), describe(onB.config)],
      })}`,
    );
  };
  crossValidated('cv sentences (scoring, α, w)', table);
  crossValidated(
    'cv sentences (scoring, α; w 0.5)',
    table.filter((row) => row.config.denseWeight === 0.5),
  );
}

/** Documents through the cache (embedded once per machine), queries always computed. */
function documentsCachedOnly(cached: Embedder, uncached: Embedder): Embedder {
  return {
    model: cached.model,
    dimensions: cached.dimensions,
    ...(cached.identity === undefined ? {} : { identity: cached.identity }),
    embed: (texts: string[], purpose?: EmbeddingPurpose) =>
      purpose === 'query' ? uncached.embed(texts, purpose) : cached.embed(texts, purpose),
  };
}

async function measureLatency(
  embedder: Embedder,
  fusion: Partial<FusionParams>,
  docs: DocumentChunks[],
  questions: GroundTruth[],
): Promise<void> {
  const dirs = [
    await mkdtemp(path.join(tmpdir(), 'ragline-sample-')),
    await mkdtemp(path.join(tmpdir(), 'ragline-sample-')),
  ];
  const lexical = await EmbeddedStore.open(dirs[0]!, {});
  const hybrid = await EmbeddedStore.open(dirs[1]!, { embedder, fusion });
  try {
    await lexical.upsertDocuments('default', docs);
    await hybrid.upsertDocuments('default', docs);
    const time = async (store: EmbeddedStore, query: string) => {
      const started = performance.now();
      const response = await store.search('default', { query, topK: 10 });
      if (response.degradedReason) throw new Error(`search degraded: ${response.degradedReason}`);
      return performance.now() - started;
    };
    // Warm both paths (JIT, frozen postings, HTTP keep-alive) before timing.
    for (const q of questions.slice(0, 5)) await Promise.all([time(lexical, q.query), time(hybrid, q.query)]);
    const lexicalMs: number[] = [];
    const hybridMs: number[] = [];
    for (const q of questions) {
      lexicalMs.push(await time(lexical, q.query));
      hybridMs.push(await time(hybrid, q.query));
    }
    const p50 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const added = hybridMs.map((ms, i) => ms - lexicalMs[i]!);
    console.log(
      `latency: ${JSON.stringify({
        queries: questions.length,
        lexicalP50Ms: Number(p50(lexicalMs).toFixed(3)),
        hybridP50Ms: Number(p50(hybridMs).toFixed(2)),
        addedP50Ms: Number(p50(added).toFixed(2)),
      })}`,
    );
  } finally {
    await lexical.close();
    await hybrid.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  }
}
