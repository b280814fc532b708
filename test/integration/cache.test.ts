import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Cache } from '../../lib/cache/cache.js';
import { invalidateDocuments } from '../../lib/cache/index.js';
import { docTag, resultKey, type ResultScope } from '../../lib/cache/keys.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { RedisCache } from '../../lib/cache/redis-cache.js';
import { ResultCache } from '../../lib/cache/result-cache.js';
import { SemanticCache } from '../../lib/cache/semantic-cache.js';
import { cachedCompute } from '../../lib/cache/single-flight.js';
import { TestRedis } from '../support/redis.js';

let redis: TestRedis;
const opened: Cache[] = [];

beforeAll(async () => {
  redis = await TestRedis.start();
});

afterAll(async () => {
  await Promise.all(opened.map((cache) => cache.close()));
  await redis?.stop();
});

interface Backend {
  name: string;
  /** A fresh cache; on Redis each call is a separate client, as a separate worker would have. */
  open(): Promise<Cache>;
  /** Writes raw bytes where the cache keeps an entry, bypassing the envelope. */
  corrupt(cache: Cache, key: string, raw: string): Promise<void>;
}

let prefixSeq = 0;
const backends: Backend[] = [
  {
    name: 'memory',
    open: async () => new MemoryCache({ maxEntries: 1000 }),
    corrupt: async (cache, key, raw) => {
      (cache as MemoryCache).entries.set(key, raw);
    },
  },
  {
    name: 'redis',
    open: async () => {
      const cache = new RedisCache({ url: redis.url, keyPrefix: `t${prefixSeq}:` });
      opened.push(cache);
      expect(await cache.ready(5000)).toBe(true);
      return cache;
    },
    corrupt: async (cache, key, raw) => {
      const redisCache = cache as RedisCache;
      await redisCache.client.set(redisCache.prefix + key, raw);
    },
  },
];

const scope: ResultScope = { tenant: 'acme', corpusVersion: 1, topK: 5, generatorModel: 'extractive' };
const minute = { ttlMs: 60_000 };

describe.each(backends)('$name cache', (backend) => {
  let cache: Cache;

  beforeAll(async () => {
    prefixSeq += 1;
    cache = await backend.open();
  });

  it('round-trips JSON values and misses unknown keys', async () => {
    const value = { answer: 'Use the reset link [1]', citations: [1], nested: { ok: true } };
    await cache.set('result:acme:k1', value, minute);
    expect(await cache.get('result:acme:k1')).toEqual(value);
    expect(await cache.get('result:acme:absent')).toBeUndefined();
    await cache.delete(['result:acme:k1']);
    expect(await cache.get('result:acme:k1')).toBeUndefined();
  });

  it('expires entries after their TTL', async () => {
    // A TTL a loaded machine cannot outrun between the set and the first get (150 ms could), and a bound on the
    // wait for its expiry well past it.
    await cache.set('llm:acme:short', 'soon gone', { ttlMs: 2000 });
    await cache.set('llm:acme:long', 'stays', minute);
    expect(await cache.get('llm:acme:short')).toBe('soon gone');
    await vi.waitFor(async () => expect(await cache.get('llm:acme:short')).toBeUndefined(), {
      timeout: 15_000,
      interval: 50,
    });
    expect(await cache.get('llm:acme:long')).toBe('stays');
  });

  it('keeps tenants, corpus versions and models apart', async () => {
    const question = 'How do I reset my password?';
    const variants: ResultScope[] = [
      scope,
      { ...scope, tenant: 'globex' },
      { ...scope, corpusVersion: 2 },
      { ...scope, generatorModel: 'gpt-4o-mini' },
    ];
    for (const [i, s] of variants.entries()) await cache.set(resultKey(s, question), `answer ${i}`, minute);
    for (const [i, s] of variants.entries()) expect(await cache.get(resultKey(s, question))).toBe(`answer ${i}`);
    expect(await cache.get(resultKey({ ...scope, corpusVersion: 3 }, question))).toBeUndefined();
  });

  it('drops tagged entries when their document is invalidated, and only those', async () => {
    const a = resultKey(scope, 'cites a');
    const ab = resultKey(scope, 'cites a and b');
    const b = resultKey(scope, 'cites b');
    const otherTenant = resultKey({ ...scope, tenant: 'globex' }, 'cites a');
    await cache.set(a, 'A', { ...minute, tags: [docTag('acme', 'doc-a')] });
    await cache.set(ab, 'AB', { ...minute, tags: [docTag('acme', 'doc-a'), docTag('acme', 'doc-b')] });
    await cache.set(b, 'B', { ...minute, tags: [docTag('acme', 'doc-b')] });
    await cache.set(otherTenant, 'G', { ...minute, tags: [docTag('globex', 'doc-a')] });

    expect(await invalidateDocuments(cache, 'acme', ['doc-a'])).toBe(2);
    expect(await cache.get(a)).toBeUndefined();
    expect(await cache.get(ab)).toBeUndefined();
    expect(await cache.get(b)).toBe('B');
    expect(await cache.get(otherTenant)).toBe('G');
    expect(await invalidateDocuments(cache, 'acme', ['doc-a'])).toBe(0);
  });

  it('re-tags an overwritten entry with its new tags only', async () => {
    const key = resultKey(scope, 'retagged');
    await cache.set(key, 'v1', { ...minute, tags: [docTag('acme', 'old')] });
    await cache.set(key, 'v2', { ...minute, tags: [docTag('acme', 'new')] });
    expect(await invalidateDocuments(cache, 'acme', ['new'])).toBe(1);
    expect(await cache.get(key)).toBeUndefined();
  });

  it('treats a corrupted or foreign-version entry as a miss, then overwrites it', async () => {
    for (const raw of ['{not json', JSON.stringify({ v: 999, d: 'from the future' }), '"bare string"', 'null']) {
      const key = resultKey(scope, `corrupt ${raw}`);
      await backend.corrupt(cache, key, raw);
      expect(await cache.get(key)).toBeUndefined();
      await cache.set(key, 'fresh', minute);
      expect(await cache.get(key)).toBe('fresh');
    }
  });

  it('computes once for 20 concurrent identical misses', async () => {
    let runs = 0;
    const compute = async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 50));
      return { answer: 'computed' };
    };
    const key = resultKey(scope, 'stampede in one process');
    const results = await Promise.all(Array.from({ length: 20 }, () => cachedCompute(cache, key, minute, compute)));
    expect(runs).toBe(1);
    expect(results.every((r) => r.value.answer === 'computed')).toBe(true);
    expect(results.filter((r) => r.source === 'computed')).toHaveLength(1);
    expect((await cachedCompute(cache, key, minute, compute)).source).toBe('cache');
    expect(runs).toBe(1);
  });

  it('hands a failed computation to every waiter and caches nothing', async () => {
    const key = resultKey(scope, 'failing compute');
    let runs = 0;
    const failing = async (): Promise<string> => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 20));
      throw new Error('generator down');
    };
    const settled = await Promise.allSettled(
      Array.from({ length: 5 }, () => cachedCompute(cache, key, minute, failing)),
    );
    expect(settled.every((s) => s.status === 'rejected')).toBe(true);
    expect(runs).toBe(1);
    expect(await cache.get(key)).toBeUndefined();
  });

  it('serves a guarded near-duplicate from a bucket kept in the cache', async () => {
    const results = new ResultCache({
      cache,
      ttlMs: 60_000,
      semantic: new SemanticCache({ cache, ttlMs: 60_000 }),
    });
    const key = await results.store(scope, 'How do I renew my SSL certificate?', 'auto-renewed [1]', ['ssl']);
    expect(await results.lookup(scope, 'How to renew the SSL certificate')).toMatchObject({
      status: 'hit',
      level: 'semantic',
      key,
      value: 'auto-renewed [1]',
    });
    expect(await results.lookup(scope, 'How do I renew my SSL certificate on the Enterprise plan?')).toMatchObject({
      status: 'miss',
    });
    expect(await results.lookup({ ...scope, tenant: 'globex' }, 'How to renew the SSL certificate')).toMatchObject({
      status: 'miss',
    });
  });

  it('reports health', async () => {
    const health = await cache.health();
    expect(health.ok).toBe(true);
    expect(health.latencyMs).toBeGreaterThanOrEqual(0);
  });
});

describe('redis cache across workers and outages', () => {
  const prefix = 'workers:';
  const openWorker = async () => {
    const cache = new RedisCache({ url: redis.url, keyPrefix: prefix, commandTimeoutMs: 200 });
    opened.push(cache);
    expect(await cache.ready(5000)).toBe(true);
    return cache;
  };

  it('computes once for concurrent misses spread over two workers', async () => {
    const [w1, w2] = [await openWorker(), await openWorker()];
    let runs = 0;
    const compute = async () => {
      runs += 1;
      await new Promise((resolve) => setTimeout(resolve, 150));
      return 'shared answer';
    };
    const key = resultKey(scope, 'stampede across workers');
    const calls = Array.from({ length: 20 }, (_, i) =>
      cachedCompute(i % 2 === 0 ? w1 : w2, key, minute, compute, { waitMs: 5000, lockMs: 5000 }),
    );
    const results = await Promise.all(calls);
    expect(runs).toBe(1);
    expect(new Set(results.map((r) => r.value))).toEqual(new Set(['shared answer']));
    expect(results.some((r) => r.source === 'waited')).toBe(true);
  });

  it('stops waiting for a lock holder after waitMs and computes itself', async () => {
    const [w1, w2] = [await openWorker(), await openWorker()];
    const key = resultKey(scope, 'crashed lock holder');
    const lock = await w1.tryLock(`compute:${key}`, 10_000);
    expect(lock).not.toBe('busy');
    const sources: string[] = [];
    let computed = 0;
    const compute = async () => {
      computed += 1;
      return 'computed after wait';
    };
    const result = await cachedCompute(w2, key, minute, compute, {
      waitMs: 300,
      onSource: (source) => sources.push(source),
    });
    expect(result).toEqual({ value: 'computed after wait', source: 'computed' });
    // It gave up on the holder (a timeout, not a lock of its own) and computed once.
    expect(sources).toEqual(['timeout']);
    expect(computed).toBe(1);
    expect(await w2.tryLock(`compute:${key}`, 1000)).toBe('busy');
  });

  it('takes the work over from a lock holder that died, once its unrenewed lock lapses', async () => {
    const [w1, w2] = [await openWorker(), await openWorker()];
    const key = resultKey(scope, 'killed lock holder');
    // A holder that took the lock and was killed: it never renews nor releases it.
    expect(await w1.tryLock(`compute:${key}`, 300)).not.toBe('busy');
    const sources: string[] = [];
    let computed = 0;
    const result = await cachedCompute(
      w2,
      key,
      minute,
      async () => {
        computed += 1;
        return 'computed after takeover';
      },
      // A wait far longer than the test: only taking the lapsed lock over lets this finish.
      { waitMs: 3_600_000, lockMs: 1000, onSource: (source) => sources.push(source) },
    );
    expect(result).toEqual({ value: 'computed after takeover', source: 'computed' });
    expect(sources).toEqual(['computed']);
    expect(computed).toBe(1);
  });

  it('keeps its lock while it computes for longer than the lock TTL, so a waiter waits for its value', async () => {
    const [w1, w2] = [await openWorker(), await openWorker()];
    const key = resultKey(scope, 'slow live lock holder');
    // The holder's computation ends only after its lock has been renewed three times, i.e. outlived its TTL.
    let renewed = 0;
    let renewedThrice!: () => void;
    const outlived = new Promise<void>((resolve) => (renewedThrice = resolve));
    let started!: () => void;
    const holding = new Promise<void>((resolve) => (started = resolve));
    const counting: Cache = Object.assign(Object.create(w1) as Cache, {
      tryLock: async (name: string, ttlMs: number) => {
        const lock = await w1.tryLock(name, ttlMs);
        if (typeof lock === 'string') return lock;
        return {
          release: () => lock.release(),
          extend: async (ms: number) => {
            const kept = (await lock.extend?.(ms)) ?? false;
            if (kept && (renewed += 1) === 3) renewedThrice();
            return kept;
          },
        };
      },
    });
    let runs = 0;
    const compute = async () => {
      runs += 1;
      started();
      await outlived;
      return 'from the live holder';
    };
    // Renewed every second: a loaded machine would have to stall the holder for 2 s to let its lock lapse (at 150 ms
    // a 100 ms stall did, and the waiter took the work over).
    const options = { waitMs: 3_600_000, lockMs: 3000 };
    const first = cachedCompute(counting, key, minute, compute, options);
    await holding;
    const second = await cachedCompute(w2, key, minute, compute, options);
    expect((await first).source).toBe('computed');
    expect(second).toEqual({ value: 'from the live holder', source: 'waited' });
    expect(runs).toBe(1);
  });

  it('serves misses and swallows writes while Redis is down, then recovers by itself', async () => {
    const cache = await openWorker();
    const key = resultKey(scope, 'outage');
    await cache.set(key, 'before', minute);
    expect(await cache.get(key)).toBe('before');

    await redis.stop();
    expect(await cache.get(key)).toBeUndefined();
    expect((await cache.lookup(key)).outcome).toBe('error');
    await expect(cache.set(key, 'during', { ...minute, tags: [docTag('acme', 'd')] })).resolves.toBeUndefined();
    await expect(cache.delete([key])).resolves.toBeUndefined();
    await expect(cache.invalidateTags([docTag('acme', 'd')])).resolves.toBe(0);
    expect(await cache.tryLock('outage', 1000)).toBe('unavailable');
    const computed = await cachedCompute(cache, key, minute, async () => 'computed without cache');
    // No lock to take, so no wait: the value is computed by this caller at once (a hang would time the test out).
    expect(computed).toEqual({ value: 'computed without cache', source: 'computed' });
    const health = await cache.health();
    expect(health.ok).toBe(false);
    expect(health.error).toBeTruthy();

    await redis.restart();
    await vi.waitFor(async () => expect((await cache.health()).ok).toBe(true), { timeout: 10_000, interval: 100 });
    await cache.set(key, 'after', minute);
    expect(await cache.get(key)).toBe('after');
  });
});
