/**
 * The main table: every engine built over the same corpus and asked the same judged queries. rssMb is the growth of
 * the process's resident set while that engine's index was built (after a GC), so it includes the texts an engine
 * keeps: ragline and Orama keep them, MiniSearch keeps only ids.
 */
import { evaluate, type Run } from '../../lib/retrieval/ir-metrics.js';
import type { Dataset } from '../datasets/beir.js';
import type { Engine } from '../engines/engine.js';
import { median, rankedList, round, settledRssMb } from './figures.js';

export interface EngineFigures {
  ndcg10: number;
  recall100: number;
  mrr10: number;
  msPerQuery: number;
  indexSeconds: number;
  docsPerSecond: number;
  rssMb: number;
}

/** Builds `engine`, times its queries (after 20 unrecorded warm-up queries), scores its run and disposes of it. */
export async function measureEngine(
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

export function printTable(rows: Record<string, EngineFigures>): void {
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

/** The graph's recall of the exact top 10 on real embeddings, the figure the synthetic bench stands in for. */
export function denseHnswRecall(runs: Map<string, Run>, queryIds: string[]): void {
  let agreed = 0;
  for (const id of queryIds) {
    const top10 = (run: Run) => rankedList(run.get(id), 10).map(({ id: docId }) => docId);
    const exact = new Set(top10(runs.get('dense')!));
    agreed += top10(runs.get('dense-hnsw')!).filter((docId) => exact.has(docId)).length;
  }
  console.log(`dense-hnsw recall@10 against exact: ${round(agreed / (queryIds.length * 10))}`);
}
