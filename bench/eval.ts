/**
 * `npm run bench -- eval [--dataset PATH] [--concurrency N]` — one `ragline eval run` over the evaluation set (the 70
 * sample-corpus questions by default) on the embedded defaults: wall time, questions/s, and the figures, checked
 * against a direct computation from the query workflows' own results.
 *
 * `npm run bench -- eval --soak MINUTES [--interval-ms 2000] [--batch-size 10] [--max-batches-per-run 50]` — the
 * continuous evaluation workflow for that long: continue-as-new runs, the largest history (events and bytes) of any
 * run, and this process's RSS (it hosts the worker) at start and end.
 */
import path from 'node:path';
import { EvaluationClient } from '../client/evaluation-client.js';
import { loadEvalSet } from '../lib/eval/dataset.js';
import { evaluateQuery } from '../lib/retrieval/ir-metrics.js';
import type { AnswerQueryResult } from '../contracts/query.js';
import { ingestDocumentsWorkflow } from '../workflows/index.js';
import { flag, startBenchStack, type BenchStack } from './support.js';

const root = path.resolve(import.meta.dirname, '..');
const round = (n: number, digits = 4) => Math.round(n * 10 ** digits) / 10 ** digits;

async function ingestSample(stack: BenchStack) {
  await stack.client.workflow.execute(ingestDocumentsWorkflow, {
    taskQueue: stack.taskQueue,
    workflowId: `bench-ingest-${Date.now()}`,
    args: [{ paths: [path.join(root, 'sample-corpus/docs')] }],
  });
}

async function runOnce(stack: BenchStack, dataset: string, concurrency: number) {
  const evals = new EvaluationClient(stack.client, stack.taskQueue);
  // One warm-up question, so bundling and first-use costs do not count.
  await evals.runOnce({ dataset, limit: 1 });
  const started = performance.now();
  const result = await evals.runOnce({ dataset, concurrency });
  const wallS = (performance.now() - started) / 1000;

  // The same figures recomputed from each query workflow's result with ir-metrics directly.
  const set = await loadEvalSet(dataset);
  let ndcg = 0;
  let recall = 0;
  for (const [i, o] of result.observations.entries()) {
    const answer = (await stack.client.workflow.getHandle(o.queryId!).result()) as AnswerQueryResult;
    const docs = [...new Set(answer.sources.map((s) => s.docId))];
    const judged = new Map(Object.entries(set.items[i]!.relevant));
    const scores = new Map(docs.map((d, rank) => [d, docs.length - rank]));
    ndcg += evaluateQuery(judged, scores, 10).ndcg;
    recall += evaluateQuery(judged, scores, result.scores.k).recall;
  }
  const n = result.observations.length;
  const direct = { ndcg10: ndcg / n, recall: recall / n };
  const s = result.scores;
  const figures = {
    bench: 'eval-run',
    dataset: path.relative(root, dataset),
    questions: n,
    concurrency,
    wallS: round(wallS, 2),
    questionsPerS: round(n / wallS, 2),
    quality: round(s.quality),
    ndcg10: round(s.ndcg10),
    mrr10: round(s.mrr10),
    [`p@${s.k}`]: round(s.precision),
    [`r@${s.k}`]: round(s.recall),
    [`f1@${s.k}`]: round(s.f1),
    recall10: round(s.recall10),
    citedRelevantShare: round(s.citedRelevantShare),
    citationsPresentShare: round(s.citationsPresentShare),
    degradedShare: round(s.degradedShare),
    latencyP50Ms: s.latencyP50Ms,
    latencyP95Ms: s.latencyP95Ms,
    matchesDirectComputation: Math.abs(direct.ndcg10 - s.ndcg10) < 1e-12 && Math.abs(direct.recall - s.recall) < 1e-12,
  };
  console.log(
    `${n} questions in ${figures.wallS} s (${figures.questionsPerS} q/s, concurrency ${concurrency}): quality ${figures.quality}, ` +
      `nDCG@10 ${figures.ndcg10}, MRR@10 ${figures.mrr10}, R@${s.k} ${figures[`r@${s.k}`]}, p50 ${s.latencyP50Ms} ms, ` +
      `p95 ${s.latencyP95Ms} ms; equals direct computation: ${figures.matchesDirectComputation}`,
  );
  console.log(JSON.stringify(figures));
}

async function soak(stack: BenchStack, dataset: string, minutes: number, args: string[]) {
  const evals = new EvaluationClient(stack.client, stack.taskQueue);
  const intervalMs = Number(flag(args, 'interval-ms') ?? 2000);
  const batchSize = Number(flag(args, 'batch-size') ?? 10);
  const maxBatchesPerRun = flag(args, 'max-batches-per-run');
  const rss = () => Math.round(process.memoryUsage().rss / 1024 / 1024);
  // RSS after the first batches, once the workflow bundle and the index are loaded: the start of the steady state.
  const started = await evals.start({
    dataset,
    settings: { intervalMs, batchSize },
    maxBatchesPerRun: maxBatchesPerRun ? Number(maxBatchesPerRun) : undefined,
  });
  const status = () => evals.status('default', started.set.name);
  while ((await status()).batches < 3) await new Promise((r) => setTimeout(r, 500));
  const rssStart = rss();
  const t0 = Date.now();
  const samples: Array<{ minute: number; rssMb: number; batches: number; continuedAsNew: number }> = [];
  while (Date.now() - t0 < minutes * 60_000) {
    await new Promise((r) => setTimeout(r, Math.min(60_000, minutes * 60_000 - (Date.now() - t0))));
    const s = await status();
    samples.push({
      minute: round((Date.now() - t0) / 60_000, 1),
      rssMb: rss(),
      batches: s.batches,
      continuedAsNew: s.continuedAsNew,
    });
    console.error(JSON.stringify(samples.at(-1)));
  }
  const final = await status();
  await evals.pause('default', started.set.name);
  let largestEvents = 0;
  let largestBytes = 0;
  let runs = 0;
  for await (const run of stack.client.workflow.list({ query: `WorkflowId = "${started.workflowId}"` })) {
    runs += 1;
    const d = await stack.client.workflow.getHandle(started.workflowId, run.runId).describe();
    largestEvents = Math.max(largestEvents, d.historyLength);
    largestBytes = Math.max(largestBytes, d.historySize ?? 0);
  }
  const figures = {
    bench: 'eval-soak',
    minutes: round((Date.now() - t0) / 60_000, 1),
    intervalMs,
    batchSize,
    batches: final.batches,
    questions: final.questions,
    continuedAsNew: final.continuedAsNew,
    runsListed: runs,
    largestHistoryEvents: largestEvents,
    largestHistoryBytes: largestBytes,
    rssStartMb: rssStart,
    rssEndMb: rss(),
    rssSamples: samples.map((s) => s.rssMb),
    firing: final.firing,
    lastQuality: final.last ? round(final.last.quality) : undefined,
  };
  await stack.client.workflow.getHandle(started.workflowId).terminate('soak done');
  console.log(JSON.stringify(figures));
}

export async function run(args: string[]): Promise<void> {
  const dataset = path.resolve(flag(args, 'dataset') ?? path.join(root, 'sample-corpus/ground-truth.jsonl'));
  const stack = await startBenchStack({ tuned: true });
  try {
    await ingestSample(stack);
    const soakMinutes = flag(args, 'soak');
    if (soakMinutes) await soak(stack, dataset, Number(soakMinutes), args);
    else await runOnce(stack, dataset, Number(flag(args, 'concurrency') ?? 1));
  } finally {
    await stack.stop();
  }
}
