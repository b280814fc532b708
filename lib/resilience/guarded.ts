import type { Cache, CacheLookup } from '../cache/cache.js';
import { ErrorType, RaglineError } from '../errors.js';
import type { AnswerGenerator, ChunkStore } from '../domain.js';
import type { DependencyBreaker } from './breakers.js';

/**
 * Adapters seen through their breaker. Health probes and close bypass it: a probe must see the real dependency,
 * and it must not count as traffic. The embedder takes its breaker itself (OpenAIEmbedderDeps.guard), since each of
 * the requests one call makes needs its own timeout.
 */

/** Reads are bounded by `readTimeoutMs`; writes are not, since a large ingestion batch may rightly take long. */
export function guardStore(store: ChunkStore, breaker: DependencyBreaker, readTimeoutMs?: number): ChunkStore {
  const read = { timeoutMs: readTimeoutMs };
  return {
    kind: store.kind,
    upsertDocuments: (tenant, docs, options) => breaker.run(() => store.upsertDocuments(tenant, docs, options)),
    deleteDocuments: (tenant, docIds) => breaker.run(() => store.deleteDocuments(tenant, docIds)),
    search: (tenant, request) => breaker.run(() => store.search(tenant, request), read),
    getChunks: (tenant, ids) => breaker.run(() => store.getChunks(tenant, ids), read),
    documentHash: (tenant, docId) => breaker.run(() => store.documentHash(tenant, docId), read),
    stats: (tenant) => breaker.run(() => store.stats(tenant), read),
    corpusVersion: (tenant) => breaker.run(() => store.corpusVersion(tenant), read),
    health: () => store.health(),
    close: () => store.close(),
  };
}

export function guardGenerator(
  generator: AnswerGenerator,
  breaker: DependencyBreaker,
  timeoutMs?: number,
): AnswerGenerator {
  return {
    model: generator.model,
    generate: (request) => breaker.run(() => generator.generate(request), { timeoutMs }),
    health: () => generator.health(),
  };
}

class CacheUnavailable extends Error {
  override readonly name = 'CacheUnavailable';
}

/**
 * The cache never throws for an outage (a lookup reports `error`), so the breaker learns from lookups. While it is
 * open every operation behaves like the cache being down — a miss, a dropped write, no lock — without waiting on
 * a connection that is not there.
 */
export function guardCache(cache: Cache, breaker: DependencyBreaker): Cache {
  const open = () => breaker.state === 'open' || breaker.state === 'isolated';
  const lookup = async <T>(key: string): Promise<CacheLookup<T>> => {
    if (!cache.lookup) return { outcome: 'miss', value: await cache.get<T>(key) };
    try {
      return await breaker.run(async () => {
        const found = await cache.lookup!<T>(key);
        if (found.outcome === 'error') throw new CacheUnavailable(`cache lookup failed for ${key.split(':')[0]}`);
        return found;
      });
    } catch {
      return { outcome: 'error' };
    }
  };
  const guarded: Cache = {
    kind: cache.kind,
    get: async (key) => {
      const found = await lookup<never>(key);
      return found.outcome === 'hit' ? found.value : undefined;
    },
    set: async (key, value, options) => {
      if (!open()) await cache.set(key, value, options);
    },
    delete: async (keys) => {
      if (!open()) await cache.delete(keys);
    },
    invalidateTags: async (tags, options) => {
      if (!open()) return cache.invalidateTags(tags, options);
      if (options?.required)
        throw new RaglineError(ErrorType.Unavailable, 'the cache breaker is open: tagged entries could not be dropped');
      return 0;
    },
    health: () => cache.health(),
    close: () => cache.close(),
  };
  if (cache.lookup) guarded.lookup = lookup;
  if (cache.tryLock) {
    const tryLock = cache.tryLock.bind(cache);
    guarded.tryLock = async (name, ttlMs) => (open() ? 'unavailable' : tryLock(name, ttlMs));
  }
  return guarded;
}
