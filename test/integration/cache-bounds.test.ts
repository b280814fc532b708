import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docTag, semanticBucketKey, type ResultScope } from '../../lib/cache/keys.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { RedisCache } from '../../lib/cache/redis-cache.js';
import { SemanticCache } from '../../lib/cache/semantic-cache.js';
import { TestRedis } from '../support/redis.js';

const scope: ResultScope = { tenant: 'acme', corpusVersion: 1, topK: 5, generatorModel: 'extractive' };
const kilobyte = 'x'.repeat(1000);

describe('in-process cache bounds', () => {
  it('holds no more bytes than its budget, evicting the least recently used with their tags', async () => {
    const cache = new MemoryCache({ maxEntries: 10_000, maxBytes: 20_000 });
    for (let i = 0; i < 100; i += 1) {
      await cache.set(`result:acme:${i}`, kilobyte, { ttlMs: 60_000, tags: [docTag('acme', `d${i}`)] });
    }
    expect(cache.entries.calculatedSize).toBeLessThanOrEqual(20_000);
    expect(cache.entries.size).toBeLessThan(20);
    expect(await cache.get('result:acme:0')).toBeUndefined();
    expect(await cache.get('result:acme:99')).toBe(kilobyte);
    // The evicted entry's tag was unindexed with it; the kept one's still works.
    expect(await cache.invalidateTags([docTag('acme', 'd0')])).toBe(0);
    expect(await cache.invalidateTags([docTag('acme', 'd99')])).toBe(1);
  });

  it('refuses an entry larger than the whole budget without losing the others', async () => {
    const cache = new MemoryCache({ maxBytes: 5_000 });
    await cache.set('result:acme:small', 'ok', { ttlMs: 60_000 });
    await cache.set('result:acme:huge', 'y'.repeat(10_000), { ttlMs: 60_000, tags: [docTag('acme', 'd')] });
    expect(await cache.get('result:acme:huge')).toBeUndefined();
    expect(await cache.get('result:acme:small')).toBe('ok');
    expect(await cache.invalidateTags([docTag('acme', 'd')])).toBe(0);
  });

  it('keeps 100 questions per semantic bucket with dense vectors and 500 without', async () => {
    const dense = new MemoryCache();
    const lexical = new MemoryCache();
    const embed = async (text: string) =>
      Array.from({ length: 64 }, (_, i) => (text.charCodeAt(i % text.length) % 7) - 3);
    const withVectors = new SemanticCache({ cache: dense, ttlMs: 60_000, embed });
    const withoutVectors = new SemanticCache({ cache: lexical, ttlMs: 60_000 });
    for (let i = 0; i < 150; i += 1) {
      await withVectors.remember(scope, `question number ${i}`, `result:acme:${i}`);
      await withoutVectors.remember(scope, `question number ${i}`, `result:acme:${i}`);
    }
    const bucketSize = async (cache: MemoryCache) =>
      (await cache.get<{ entries: unknown[] }>(semanticBucketKey(scope)))?.entries.length;
    expect(await bucketSize(dense)).toBe(100);
    expect(await bucketSize(lexical)).toBe(150);
  });
});

describe('Redis tag sets', () => {
  let redis: TestRedis;
  let cache: RedisCache;

  beforeAll(async () => {
    redis = await TestRedis.start();
    // No grace period, so members are trimmable as soon as their entries expire.
    cache = new RedisCache({ url: redis.url, keyPrefix: 'bounds:', tagGraceMs: 0 });
    expect(await cache.ready(5000)).toBe(true);
  });

  afterAll(async () => {
    await cache?.close();
    await redis?.stop();
  });

  it('trims members whose entries are gone instead of growing for ever', async () => {
    const tag = docTag('acme', 'popular');
    for (let i = 0; i < 50; i += 1) await cache.set(`result:acme:old${i}`, 'v', { ttlMs: 20, tags: [tag] });
    await expect.poll(() => cache.client.exists(`bounds:result:acme:old49`), { timeout: 10_000 }).toBe(0);

    await cache.set('result:acme:fresh', 'v', { ttlMs: 60_000, tags: [tag] });
    expect(await cache.client.zrange(cache.tagKey(tag), 0, -1)).toEqual(['bounds:result:acme:fresh']);
    // The tag lives as long as its longest-lived member.
    expect(await cache.client.pttl(cache.tagKey(tag))).toBeGreaterThan(1000);
    expect(await cache.invalidateTags([tag])).toBe(1);
    expect(await cache.get('result:acme:fresh')).toBeUndefined();
  });

  it('still invalidates through a tag set written by the previous version', async () => {
    const tag = docTag('acme', 'legacy');
    await cache.client.set('bounds:result:acme:legacy', '{}');
    await cache.client.sadd(`bounds:tag:${tag}`, 'bounds:result:acme:legacy');
    expect(await cache.invalidateTags([tag])).toBe(1);
    expect(await cache.client.exists(`bounds:tag:${tag}`)).toBe(0);
  });
});
