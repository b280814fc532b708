/**
 * The improvement loop on BEIR SciFact, started from a deliberately poor configuration (top-k 1, BM25 b 1.0):
 *
 *   npm run bench -- improve [--dataset DIR] [--cycles 5]
 *
 * Runs the real improvementWorkflow on a dev server against the real worker (SciFact ingested through the ingestion
 * workflow, one tenant), approving every proposal it holds for a person (as operator `bench`), and prints one row
 * per cycle. Beside it: the best configuration of a grid search over the same bounds (PARAM_BOUNDS grids), and,
 * because the loop tunes on the very questions it is scored on, a two-fold cross-validated figure of the same
 * decision rule (tune on one half of the questions, score on the other, and the other way round).
 *
 * With an embedding server the store gets a dense leg, the loop also tunes the dense weight of the weighted fusion,
 * and the start is lexical only as well (dense weight 0). A folder without corpus.jsonl is ingested from its `docs/`
 * (the sample corpus):
 *
 *   npm run bench -- improve --dataset sample-corpus --embedder-url URL --embedding-model NAME
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ImprovementClient } from '../client/improvement-client.js';
import { loadEvalSet, type EvalItem } from '../lib/eval/dataset.js';
import type { ChunkStore } from '../lib/domain.js';
import {
  PARAM_BOUNDS,
  candidateParams,
  describeChanges,
  tunedParams,
  type ParamName,
  type RetrievalParams,
} from '../lib/improve/params.js';
import { defaultEmbeddingCacheDir } from '../lib/retrieval/disk-embedding-cache.js';
import { beatsNoise, compareScores, evaluateParams } from '../lib/improve/shadow.js';
import { startRagline } from '../test/support/ragline.js';
import { flag } from './support.js';

const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(values.length, 1);
const r4 = (value: number) => value.toFixed(4);

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const dataset = path.resolve(flag(args, 'dataset') ?? path.join(projectRoot, '../shared/datasets/scifact'));
  const cycles = Number(flag(args, 'cycles') ?? 5);
  const embedderUrl = flag(args, 'embedder-url');
  const dense = embedderUrl !== undefined;
  const tuned = tunedParams({ store: 'embedded', dense, fusion: 'weighted' });
  const set = await loadEvalSet(dataset);
  const tenant = set.name;
  console.error(`evaluation set ${set.name}@${set.version}: ${set.items.length} questions; tuning ${tuned.join(', ')}`);

  const ragline = await startRagline({
    config: dense
      ? {
          OPENAI_EMBEDDING_MODEL: flag(args, 'embedding-model') ?? 'multilingual-e5-small-q4',
          OPENAI_EMBEDDING_DIMENSIONS: flag(args, 'embedding-dimensions') ?? '384',
          RAGLINE_EMBEDDING_URL: embedderUrl,
          RAGLINE_EMBEDDING_QUERY_INPUT_TYPE: 'query',
          RAGLINE_EMBEDDING_DOCUMENT_INPUT_TYPE: 'passage',
          RAGLINE_EMBEDDING_SEND_DIMENSIONS: 'false',
          RAGLINE_EMBEDDING_CACHE_DIR: defaultEmbeddingCacheDir(),
          RAGLINE_FUSION: 'weighted',
        }
      : {},
  });
  try {
    const started = performance.now();
    // The corpus file only: the folder also holds the queries, which are JSONL with `_id` and `text` too.
    const corpus = ['corpus.jsonl.gz', 'corpus.jsonl', 'docs'].map((name) => path.join(dataset, name)).find(existsSync);
    if (!corpus) throw new Error(`${dataset} has no corpus.jsonl(.gz) or docs/`);
    const ingested = await ragline.ingest([corpus], tenant);
    console.error(
      `ingested ${ingested.documentsDone} documents (${ingested.rejected} rejected) in ` +
        `${((performance.now() - started) / 1000).toFixed(0)} s`,
    );
    const store = ragline.runtime.deps.store;
    const improvement = new ImprovementClient(ragline.env.client, ragline.taskQueue);
    await improvement.ensure(tenant, {
      intervalMs: 3_600_000,
      evalSet: dataset,
      approvers: ['bench'],
      approvalTtlMs: 3_600_000,
      autoApplyScale: 1,
    });
    const poorStart = dense ? { topK: 1, bm25B: 1, fusionWeight: 0 } : { topK: 1, bm25B: 1 };
    const poor = await improvement.setParams(tenant, poorStart, 'bench', 'deliberately poor start');
    const start = mean(await evaluateParams(store, tenant, set.items, poor.params));

    const rows: string[][] = [['cycle', 'outcome', 'change', 'nDCG@10 before', 'after', 'noise', 'version']];
    const startLabel = Object.entries(poorStart)
      .map(([name, value]) => `${name}=${value}`)
      .join(', ');
    rows.push(['0', 'start', startLabel, '', r4(start), '', String(poor.toVersion)]);
    let lowered = false;
    let current = start;
    for (let cycle = 1; cycle <= cycles; cycle++) {
      await improvement.runNow(tenant);
      let status = await improvement.status(tenant);
      while (status.cycles < cycle) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        status = await improvement.status(tenant);
      }
      const summary = status.history.at(-1)!;
      let outcome: string = summary.outcome;
      const proposal = status.pending[0];
      if (summary.outcome === 'proposed' && proposal) {
        await improvement.approve(tenant, proposal.id, 'bench', 'benchmark: approve every measured proposal');
        outcome = 'approved';
      }
      const after = await improvement.status(tenant);
      const measured = mean(await evaluateParams(store, tenant, set.items, after.current!.params));
      if (measured < current - 1e-9) lowered = true;
      current = measured;
      rows.push([
        String(cycle),
        outcome,
        summary.changes ?? '—',
        summary.effect ? r4(summary.effect.before) : '',
        r4(measured),
        summary.effect ? `±${r4(summary.effect.noise)}` : '',
        String(after.current?.version ?? 0),
      ]);
    }
    const final = (await improvement.status(tenant)).current!;
    printTable(rows);

    console.error('grid search over the same bounds…');
    const grid = await gridSearch(store, tenant, set.items, final.params, tuned);
    console.log(
      `grid best: nDCG@10 ${r4(grid.score)} with ${describeChanges(final.params, grid.params) || 'the loop’s final configuration'} ` +
        `(${grid.evaluated} configurations)`,
    );
    const gap = grid.score - current;
    console.log(
      `loop after ${cycles} cycles: nDCG@10 ${r4(current)}, ${r4(gap)} below the grid best ` +
        `(${gap <= 0.01 ? 'within' : 'NOT within'} 0.01); an applied change lowered the score: ${lowered ? 'yes' : 'no'}`,
    );

    const cv = await twoFold(store, tenant, set.items, poor.params, cycles, tuned);
    console.log(
      `two-fold cross-validation of the same decision rule: held-out nDCG@10 ${r4(cv.heldOut)} ` +
        `(folds ${cv.folds.map(r4).join(', ')}) against ${r4(cv.tunedOnAll)} tuned and scored on all questions`,
    );
    console.log(
      JSON.stringify({
        bench: 'improve',
        dataset: set.name,
        dense,
        questions: set.items.length,
        start,
        final: current,
        finalParams: final.params,
        gridBest: grid.score,
        gridParams: grid.params,
        gap,
        lowered,
        crossValidated: cv.heldOut,
      }),
    );
  } finally {
    await ragline.stop();
  }
}

function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  '));
}

async function gridSearch(
  store: ChunkStore,
  tenant: string,
  items: EvalItem[],
  base: RetrievalParams,
  tuned: ParamName[],
) {
  let best = { params: base, score: -1, evaluated: 0 };
  const values = tuned.map((name) => PARAM_BOUNDS[name].grid);
  const combinations = values.reduce<number[][]>(
    (acc, list) => acc.flatMap((prefix) => list.map((v) => [...prefix, v])),
    [[]],
  );
  for (const combination of combinations) {
    const params = { ...base };
    tuned.forEach((name, i) => (params[name] = combination[i]!));
    const score = mean(await evaluateParams(store, tenant, items, params));
    best.evaluated++;
    if (score > best.score) best = { ...best, params, score };
  }
  return best;
}

/** The loop's decision rule in process: per cycle, the best coordinate-search candidate that beats the noise. */
async function tune(
  store: ChunkStore,
  tenant: string,
  items: EvalItem[],
  start: RetrievalParams,
  cycles: number,
  tuned: ParamName[],
) {
  let current = start;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const baseline = await evaluateParams(store, tenant, items, current);
    let best: { params: RetrievalParams; gain: number } | undefined;
    for (const candidate of candidateParams(current, tuned)) {
      const comparison = compareScores(baseline, await evaluateParams(store, tenant, items, candidate));
      if (beatsNoise(comparison) && (!best || comparison.delta > best.gain))
        best = { params: candidate, gain: comparison.delta };
    }
    if (!best) break;
    current = best.params;
  }
  return current;
}

async function twoFold(
  store: ChunkStore,
  tenant: string,
  items: EvalItem[],
  start: RetrievalParams,
  cycles: number,
  tuned: ParamName[],
) {
  // A fixed split by position in the shuffled-by-id order: deterministic, and not the file's order.
  const ordered = [...items].sort((a, b) => (hash(a.id) < hash(b.id) ? -1 : 1));
  const halves = [ordered.filter((_, i) => i % 2 === 0), ordered.filter((_, i) => i % 2 === 1)];
  const folds: number[] = [];
  for (const [tuneOn, scoreOn] of [
    [halves[0]!, halves[1]!],
    [halves[1]!, halves[0]!],
  ]) {
    const chosen = await tune(store, tenant, tuneOn!, start, cycles, tuned);
    folds.push(mean(await evaluateParams(store, tenant, scoreOn!, chosen)));
  }
  const all = await tune(store, tenant, items, start, cycles, tuned);
  return {
    folds,
    heldOut: (folds[0]! * halves[1]!.length + folds[1]! * halves[0]!.length) / items.length,
    tunedOnAll: mean(await evaluateParams(store, tenant, items, all)),
  };
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}
