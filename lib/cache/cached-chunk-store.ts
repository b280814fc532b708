import type { Chunk, ChunkStore } from '../domain.js';
import type { Cache } from './cache.js';
import { chunkKey } from './keys.js';

/**
 * The document-chunk cache level: chunk texts read by id are kept in the cache, so generation does not go back
 * to a remote store (Qdrant) for chunks it fetched recently. Keys carry the tenant's corpus version as the
 * content hash, so a changed document is never served stale. Everything else passes straight through.
 */
export function withChunkCache(
  store: ChunkStore,
  cache: Cache,
  options: { ttlMs: number; onLookup?: (outcome: 'hit' | 'miss') => void },
): ChunkStore {
  const getChunks = async (tenant: string, chunkIds: string[]): Promise<Chunk[]> => {
    const version = String(await store.corpusVersion(tenant));
    const keyOf = (chunkId: string) => chunkKey({ tenant, chunkId, contentHash: version });
    const cached = await Promise.all(chunkIds.map((id) => cache.get<Chunk>(keyOf(id))));
    const missing = chunkIds.filter((_, i) => cached[i] === undefined);
    for (const value of cached) options.onLookup?.(value === undefined ? 'miss' : 'hit');
    const fetched = missing.length > 0 ? await store.getChunks(tenant, missing) : [];
    await Promise.all(fetched.map((chunk) => cache.set(keyOf(chunk.id), chunk, { ttlMs: options.ttlMs })));
    const byId = new Map([...cached.filter((c): c is Chunk => c !== undefined), ...fetched].map((c) => [c.id, c]));
    return chunkIds.flatMap((id) => byId.get(id) ?? []);
  };
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'getChunks') return getChunks;
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
