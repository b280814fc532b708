import { Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { Cache } from '../../lib/cache/cache.js';
import { createCache, createCacheMetrics, invalidateDocuments } from '../../lib/cache/index.js';
import { InstrumentedCache } from '../../lib/cache/instrumented-cache.js';
import { docTag, resultKey, type ResultScope } from '../../lib/cache/keys.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import type { RedisCache } from '../../lib/cache/redis-cache.js';
import { ResultCache } from '../../lib/cache/result-cache.js';
import { SemanticCache } from '../../lib/cache/semantic-cache.js';
import { cachedCompute } from '../../lib/cache/single-flight.js';
import { loadConfig } from '../../lib/config.js';

const scope: ResultScope = { tenant: 'acme', corpusVersion: 2, topK: 5, generatorModel: 'extractive' };

const requestsCounter = (registry: Registry) =>
  new Counter({
    name: 'rag_cache_requests_total',
    help: 'h',
    labelNames: ['level', 'outcome'] as const,
    registers: [registry],
  });

async function countOf(counter: Counter<'level' | 'outcome'>, level: string, outcome: string): Promise<number> {
  return (await counter.get()).values.find((v) => v.labels.level === level && v.labels.outcome === outcome)?.value ?? 0;
}

/** A cache whose store is unreachable, as RedisCache behaves during an outage. */
class DownCache extends MemoryCache {
  override async lookup<T>(): Promise<{ outcome: 'error'; value?: T }> {
    return { outcome: 'error' };
  }
}

describe('ResultCache', () => {
  it('serves exact hits, then guarded near-duplicates, and counts both levels', async () => {
    const registry = new Registry();
    const requests = requestsCounter(registry);
    const metrics = createCacheMetrics(registry);
    const cache = new MemoryCache();
    const semantic = new SemanticCache({ cache, ttlMs: 60_000, metrics, requests });
    const results = new ResultCache({ cache, ttlMs: 60_000, semantic, requests });

    expect(await results.lookup(scope, 'How do I enable 2FA?')).toMatchObject({ status: 'miss', outcome: 'miss' });
    const key = await results.store(scope, 'How do I enable 2FA?', { answer: 'Settings > Security [1]' }, [
      'security',
      'security',
    ]);
    expect(key).toBe(resultKey(scope, 'How do I enable 2FA?'));

    expect(await results.lookup(scope, 'how do i enable 2fa')).toMatchObject({ status: 'hit', level: 'result', key });
    expect(await results.lookup(scope, 'How can I enable two-factor authentication?')).toMatchObject({
      status: 'hit',
      level: 'semantic',
      key,
      matchedQuestion: 'How do I enable 2FA?',
    });
    expect(await results.lookup(scope, 'How do I disable 2FA?')).toMatchObject({ status: 'miss' });
    await results.store(scope, 'Does the free plan include SSO?', { answer: 'No [1]' }, ['plans']);
    expect(await results.lookup(scope, 'Does the free plan not include SSO?')).toMatchObject({ status: 'miss' });

    expect(await countOf(requests, 'result', 'hit')).toBe(1);
    expect(await countOf(requests, 'result', 'miss')).toBe(4);
    expect(await countOf(requests, 'semantic', 'hit')).toBe(1);
    expect(await countOf(requests, 'semantic', 'miss')).toBe(3);
    // "disable" falls below the threshold; the negated question is above it and refused by the guard.
    expect((await metrics.semanticRefusals.get()).values).toEqual([{ labels: { reason: 'negation' }, value: 1 }]);

    expect(await invalidateDocuments(cache, 'acme', ['security'])).toBe(1);
    expect(await results.lookup(scope, 'How can I enable two-factor authentication?')).toMatchObject({
      status: 'miss',
    });
  });

  it('reports an unreachable store as an error miss and skips the semantic round trip', async () => {
    const registry = new Registry();
    const requests = requestsCounter(registry);
    const cache = new DownCache();
    const semantic = new SemanticCache({ cache, ttlMs: 60_000, requests });
    const results = new ResultCache({ cache, ttlMs: 60_000, semantic, requests });
    expect(await results.lookup(scope, 'q')).toMatchObject({ status: 'miss', outcome: 'error' });
    expect(await countOf(requests, 'result', 'error')).toBe(1);
    expect(await countOf(requests, 'semantic', 'miss')).toBe(0);
  });
});

describe('InstrumentedCache', () => {
  it('counts lookups per level from the key and keeps hit ratios', async () => {
    const registry = new Registry();
    const requests = requestsCounter(registry);
    const ratio = new Gauge({ name: 'rag_cache_hit_rate', help: 'h', registers: [registry] });
    const cache = new InstrumentedCache(new MemoryCache(), { requests, resultHitRate: ratio });
    const key = resultKey(scope, 'q');
    await cache.set(key, 'a', { ttlMs: 60_000 });
    await cache.get(key);
    await cache.get(resultKey(scope, 'other'));
    await cache.get('embedding:abc');
    await cache.get('semantic:acme:bucket');
    expect(cache.stats().result).toEqual({ hit: 1, miss: 1, error: 0, hitRatio: 0.5 });
    expect(cache.stats().embedding.miss).toBe(1);
    expect(cache.stats().semantic).toEqual({ hit: 0, miss: 0, error: 0, hitRatio: 0 });
    expect((await ratio.get()).values[0]?.value).toBe(0.5);
    expect(await countOf(requests, 'embedding', 'miss')).toBe(1);
    expect(cache.kind).toBe('memory');
    expect(cache.tryLock).toBeUndefined();
    const computed = await cachedCompute(cache, resultKey(scope, 'c'), { ttlMs: 60_000 }, async () => 'v');
    expect(computed.source).toBe('computed');
  });
});

describe('MemoryCache', () => {
  it('evicts the least recently used entries and forgets their tags', async () => {
    const cache = new MemoryCache({ maxEntries: 2 });
    const tag = docTag('acme', 'd');
    await cache.set('result:acme:1', 1, { ttlMs: 60_000, tags: [tag] });
    await cache.set('result:acme:2', 2, { ttlMs: 60_000, tags: [tag] });
    await cache.get('result:acme:1');
    await cache.set('result:acme:3', 3, { ttlMs: 60_000 });
    expect(await cache.get('result:acme:2')).toBeUndefined();
    expect(await cache.get('result:acme:1')).toBe(1);
    expect(await cache.invalidateTags([tag])).toBe(1);
    expect(await cache.get('result:acme:3')).toBe(3);
  });

  it('hands out copies, not references to the stored value', async () => {
    const cache = new MemoryCache();
    const value = { list: [1] };
    await cache.set('chunk:acme:x', value, { ttlMs: 60_000 });
    value.list.push(2);
    const read = await cache.get<{ list: number[] }>('chunk:acme:x');
    read?.list.push(3);
    expect(await cache.get('chunk:acme:x')).toEqual({ list: [1] });
  });
});

describe('createCache', () => {
  it('picks memory by default and Redis when configured, without waiting for it', async () => {
    const opened: Cache[] = [
      createCache(loadConfig({})),
      createCache(loadConfig({ REDIS_URL: 'redis://127.0.0.1:1' })),
    ];
    expect(opened.map((c) => c.kind)).toEqual(['memory', 'redis']);
    expect((opened[1] as RedisCache).prefix).toBe('ragline:');
    // Nothing listens on port 1: the cache answers misses instead of failing.
    expect(await opened[1]!.get('result:acme:x')).toBeUndefined();
    await Promise.all(opened.map((c) => c.close()));
  });

  it('registers its metrics once per registry', () => {
    const registry = new Registry();
    expect(createCacheMetrics(registry).semanticHits).toBe(createCacheMetrics(registry).semanticHits);
  });
});
