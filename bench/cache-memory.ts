/**
 * `npm run bench -- cache-memory [--answers N] [--answer-chars N] [--sources N] [--semantic]`: memory taken by N
 * cached answers (default 100,000) on each backend, stored the way `storeCachedAnswer` stores them (ResultCache, one
 * doc tag per cited source). The in-process cache is given bounds large enough to keep them all, so the figure is
 * what they cost; the default bounds' share is printed beside it. Redis is measured as `used_memory` of a fresh
 * redis-server before and after. The semantic level is off by default: its buckets are bounded per scope (500
 * lexical or 100 dense questions), so they add a constant, not a per-answer cost, and rewriting a bucket per answer
 * would dominate the run. Last stdout line is JSON: `{ "memory": {...}, "redis": {...} }`.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Redis } from 'ioredis';
import type { Cache } from '../lib/cache/cache.js';
import { MemoryCache } from '../lib/cache/memory-cache.js';
import { RedisCache } from '../lib/cache/redis-cache.js';
import { ResultCache } from '../lib/cache/result-cache.js';
import { SemanticCache } from '../lib/cache/semantic-cache.js';
import type { ResultScope } from '../lib/cache/keys.js';
import { loadConfig } from '../lib/config.js';
import type { Source } from '../contracts/query.js';
import { TestRedis } from '../test/support/redis.js';
import { flag } from './support.js';

v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const settle = (): number => {
  for (let i = 0; i < 3; i += 1) gc();
  return process.memoryUsage().heapUsed;
};

const mib = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

interface Shape {
  answers: number;
  answerChars: number;
  sources: number;
  semantic: boolean;
}

/** A realistic answer: prose with citations, and sources with 240-character snippets as the activity builds them. */
function answerFor(i: number, shape: Shape) {
  const words = 'rotate the signing keys with the admin command line every ninety days and audit the log '.repeat(
    Math.ceil(shape.answerChars / 88),
  );
  const sources: Source[] = Array.from({ length: shape.sources }, (_, s) => ({
    docId: `doc-${(i * 7 + s * 131) % 10_000}`,
    chunkId: `doc-${(i * 7 + s * 131) % 10_000}#${s}`,
    title: `Operations guide, part ${s}`,
    snippet: words.slice(s, s + 240),
    score: 1 / (s + 1),
    n: s + 1,
  }));
  return {
    answer: `${i} ${words.slice(0, shape.answerChars)} [1][2]`,
    sources,
    qualityScore: 0.8,
    model: 'gpt-4o-mini',
    citations: [1, 2],
    corpusVersion: 1,
  };
}

async function fill(cache: Cache, shape: Shape): Promise<void> {
  const config = loadConfig({});
  const ttlMs = config.RAGLINE_CACHE_TTL_RESULT_SECONDS * 1000;
  const semantic = shape.semantic ? new SemanticCache({ cache, ttlMs }) : undefined;
  const results = new ResultCache({ cache, ttlMs, semantic });
  // A thousand tenants' worth of scopes, so semantic buckets (when on) are many, as in a multi-tenant deployment.
  const scopeOf = (i: number): ResultScope => ({
    tenant: `tenant-${i % 1000}`,
    corpusVersion: 1,
    topK: 5,
    generatorModel: 'gpt-4o-mini',
    settings: 'bench',
  });
  const batch = 500;
  for (let start = 0; start < shape.answers; start += batch) {
    await Promise.all(
      Array.from({ length: Math.min(batch, shape.answers - start) }, (_, j) => {
        const i = start + j;
        const value = answerFor(i, shape);
        return results.store(
          scopeOf(i),
          `question ${i} about key rotation`,
          value,
          value.sources.map((s) => s.docId),
        );
      }),
    );
  }
}

async function measureMemory(shape: Shape) {
  const before = settle();
  const cache = new MemoryCache({ maxEntries: shape.answers * 2 + 10_000, maxBytes: 16 * 1024 ** 3 });
  await fill(cache, shape);
  const after = settle();
  const defaults = loadConfig({});
  const bytesPerEntry = cache.entries.calculatedSize / Math.max(1, cache.entries.size);
  const figures = {
    entries: cache.entries.size,
    heapMiB: mib(after - before),
    heapBytesPerAnswer: Math.round((after - before) / shape.answers),
    storedMiB: mib(cache.entries.calculatedSize),
    // What the default bounds keep of these: the tighter of the entry cap and the byte budget.
    defaultBoundsKeep: Math.min(
      defaults.RAGLINE_CACHE_MAX_ENTRIES,
      Math.floor(defaults.RAGLINE_CACHE_MAX_BYTES / bytesPerEntry),
    ),
  };
  await cache.close();
  return figures;
}

async function measureRedis(shape: Shape) {
  const redis = await TestRedis.start();
  const admin = new Redis(redis.url);
  try {
    const usedMemory = async () => Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1] ?? 0);
    const before = await usedMemory();
    const cache = new RedisCache({ url: redis.url, commandTimeoutMs: 10_000 });
    await cache.ready(5000);
    await fill(cache, shape);
    const after = await usedMemory();
    const figures = {
      keys: await admin.dbsize(),
      usedMemoryMiB: mib(after - before),
      bytesPerAnswer: Math.round((after - before) / shape.answers),
    };
    await cache.close();
    return figures;
  } finally {
    admin.disconnect();
    await redis.stop();
  }
}

export async function run(args: string[]): Promise<void> {
  const shape: Shape = {
    answers: Number(flag(args, 'answers') ?? 100_000),
    answerChars: Number(flag(args, 'answer-chars') ?? 600),
    sources: Number(flag(args, 'sources') ?? 5),
    semantic: args.includes('--semantic'),
  };
  const sample = JSON.stringify(answerFor(0, shape)).length;
  console.log(
    `${shape.answers} answers of ${sample} JSON bytes (${shape.answerChars}-char answer, ${shape.sources} sources)` +
      `, semantic level ${shape.semantic ? 'on' : 'off'}`,
  );
  const memory = await measureMemory(shape);
  console.log(
    `memory: ${memory.entries} entries, ${memory.heapMiB} MiB heap (${memory.heapBytesPerAnswer} B/answer), ` +
      `${memory.storedMiB} MiB counted against RAGLINE_CACHE_MAX_BYTES; default bounds keep ${memory.defaultBoundsKeep}`,
  );
  const redis = await measureRedis(shape);
  console.log(`redis: ${redis.keys} keys, ${redis.usedMemoryMiB} MiB used_memory (${redis.bytesPerAnswer} B/answer)`);
  console.log(JSON.stringify({ shape: { ...shape, jsonBytes: sample }, memory, redis }));
}
