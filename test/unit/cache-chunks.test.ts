import { describe, expect, it } from 'vitest';
import { withChunkCache } from '../../lib/cache/cached-chunk-store.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import type { ChunkStore, DocumentChunks } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { tempDir } from '../support/ragline.js';

const doc = (text: string, hash: string): DocumentChunks => ({
  docId: 'd1',
  title: 'Doc',
  contentHash: hash,
  chunks: [{ id: 'd1#0', docId: 'd1', title: 'Doc', text, position: 0 }],
});

describe('document-chunk cache level', () => {
  it('serves chunks read before from the cache, and never a changed document stale', async () => {
    const store = await EmbeddedStore.open(await tempDir());
    let reads = 0;
    const counting = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'getChunks') {
          return (tenant: string, ids: string[]) => {
            reads += 1;
            return target.getChunks(tenant, ids);
          };
        }
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as ChunkStore;
    const outcomes: string[] = [];
    const cached = withChunkCache(counting, new MemoryCache(), { ttlMs: 60_000, onLookup: (o) => outcomes.push(o) });

    await store.upsertDocuments('t1', [doc('first version of the text', 'h1')]);
    expect((await cached.getChunks('t1', ['d1#0']))[0]?.text).toBe('first version of the text');
    expect((await cached.getChunks('t1', ['d1#0']))[0]?.text).toBe('first version of the text');
    expect(reads).toBe(1);
    expect(outcomes).toEqual(['miss', 'hit']);

    await store.upsertDocuments('t1', [doc('second version of the text', 'h2')]);
    expect((await cached.getChunks('t1', ['d1#0']))[0]?.text).toBe('second version of the text');
    expect(reads).toBe(2);

    // Another tenant's identical chunk id is its own entry.
    expect(await cached.getChunks('t2', ['d1#0'])).toEqual([]);
    await store.close();
  });
});

describe('per-level hit ratios', () => {
  it('are derived from the lookup counters at scrape time', async () => {
    const { createMetrics } = await import('../../lib/telemetry/metrics.js');
    const metrics = createMetrics();
    metrics.cacheRequests.inc({ level: 'result', outcome: 'hit' }, 3);
    metrics.cacheRequests.inc({ level: 'result', outcome: 'miss' }, 1);
    metrics.cacheRequests.inc({ level: 'chunk', outcome: 'miss' }, 2);
    const text = await metrics.registry.metrics();
    expect(text).toContain('rag_cache_hit_ratio{level="result"} 0.75');
    expect(text).toContain('rag_cache_hit_ratio{level="chunk"} 0');
  });
});
