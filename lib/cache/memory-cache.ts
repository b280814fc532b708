import { LRUCache } from 'lru-cache';
import type { HealthStatus } from '../domain.js';
import type { Cache, CacheLookup, CacheSetOptions, InvalidateOptions } from './cache.js';
import { decodeEntry, encodeEntry } from './codec.js';

export interface MemoryCacheOptions {
  /** @default 10000 (RAGLINE_CACHE_MAX_ENTRIES) */
  maxEntries?: number;
  /** Bytes of keys and serialised values; an entry larger than this is not kept. @default 268435456 (RAGLINE_CACHE_MAX_BYTES) */
  maxBytes?: number;
}

/**
 * The embedded cache: an LRU bounded by entry count and by bytes, one TTL per entry, and a tag index for
 * invalidation. Both bounds matter: a count alone lets a few thousand long LLM answers or semantic buckets take
 * gigabytes, bytes alone let millions of tiny entries' overhead grow unseen.
 * Values are stored serialised, as in Redis, so callers can neither mutate a cached value through a reference nor
 * cache something that would not survive the trip to Redis.
 */
export class MemoryCache implements Cache {
  readonly kind = 'memory' as const;
  /** The raw store, exposed so tests can damage an entry the way a bad deploy or a bit flip would. */
  readonly entries: LRUCache<string, string>;
  private readonly tagsByKey = new Map<string, string[]>();
  private readonly keysByTag = new Map<string, Set<string>>();

  constructor(options: MemoryCacheOptions = {}) {
    this.entries = new LRUCache<string, string>({
      max: options.maxEntries ?? 10_000,
      maxSize: options.maxBytes ?? 268_435_456,
      // UTF-8 bytes, as Redis would store them; the tag index is small beside the values and is not counted.
      sizeCalculation: (value, key) => Buffer.byteLength(value) + Buffer.byteLength(key),
      // An overwrite re-indexes its tags itself in set(); every other way out of the LRU unindexes here.
      dispose: (_value, key, reason) => {
        if (reason !== 'set') this.unindex(key);
      },
    });
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.lookup<T>(key)).value;
  }

  async lookup<T>(key: string): Promise<CacheLookup<T>> {
    const raw = this.entries.get(key);
    if (raw === undefined) return { outcome: 'miss' };
    const value = decodeEntry<T>(raw);
    return value === undefined ? { outcome: 'miss' } : { outcome: 'hit', value };
  }

  async set<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    const raw = encodeEntry(value);
    this.unindex(key);
    this.entries.set(key, raw, { ttl: options.ttlMs });
    // Larger than the whole byte budget: not kept, so nothing to index.
    if (!this.entries.has(key)) return;
    const tags = [...new Set(options.tags ?? [])];
    if (tags.length === 0) return;
    this.tagsByKey.set(key, tags);
    for (const tag of tags) {
      let keys = this.keysByTag.get(tag);
      if (!keys) this.keysByTag.set(tag, (keys = new Set()));
      keys.add(key);
    }
  }

  async delete(keys: string[]): Promise<void> {
    for (const key of keys) this.entries.delete(key);
  }

  async invalidateTags(tags: string[], _options?: InvalidateOptions): Promise<number> {
    let dropped = 0;
    for (const tag of tags) {
      for (const key of [...(this.keysByTag.get(tag) ?? [])]) {
        if (this.entries.delete(key)) dropped += 1;
      }
      this.keysByTag.delete(tag);
    }
    return dropped;
  }

  async health(): Promise<HealthStatus> {
    return {
      ok: true,
      latencyMs: 0,
      detail: `memory, ${this.entries.size} entries, ${this.entries.calculatedSize} bytes`,
    };
  }

  async close(): Promise<void> {
    this.entries.clear();
  }

  private unindex(key: string): void {
    const tags = this.tagsByKey.get(key);
    if (!tags) return;
    this.tagsByKey.delete(key);
    for (const tag of tags) {
      const keys = this.keysByTag.get(tag);
      keys?.delete(key);
      if (keys?.size === 0) this.keysByTag.delete(tag);
    }
  }
}
