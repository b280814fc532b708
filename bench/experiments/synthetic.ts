/** `--synthetic N`: the EmbeddedStore's search latency and memory over N generated chunks (bench/datasets/synthetic.ts). */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DocumentChunks } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { syntheticCorpus } from '../datasets/synthetic.js';
import { median, round, settledRssMb } from './figures.js';

export async function runSynthetic(chunks: number, queryCount: number): Promise<void> {
  const corpus = syntheticCorpus(42);
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
      for (let n = i; n < Math.min(i + batch, chunks); n++) docs.push(corpus.document(n));
      started = performance.now();
      await store.upsertDocuments('synthetic', docs);
      indexMs += performance.now() - started;
    }
    started = performance.now();
    await store.search('synthetic', { query: corpus.word(), topK: 10 });
    const indexSeconds = (indexMs + performance.now() - started) / 1000;
    const rssMb = settledRssMb() - rssBefore;
    const timings: number[] = [];
    for (let q = 0; q < queryCount; q++) {
      const query = corpus.query();
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
