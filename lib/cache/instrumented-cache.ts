import type { Counter, Gauge } from 'prom-client';
import type { HealthStatus } from '../domain.js';
import type { Cache, CacheLock, CacheLookup, CacheOutcome, CacheSetOptions, InvalidateOptions } from './cache.js';
import { CACHE_LEVELS, levelOf, type CacheLevel } from './keys.js';

export interface InstrumentedCacheDeps {
  /** `rag_cache_requests_total{level,outcome}` from lib/telemetry/metrics.ts. */
  requests?: Pick<Counter<'level' | 'outcome'>, 'inc'>;
  /** `rag_cache_hit_rate`: result-level hit ratio since start. */
  resultHitRate?: Pick<Gauge, 'set'>;
}

export interface LevelStats {
  hit: number;
  miss: number;
  error: number;
  /** hits / lookups, 0 before the first lookup. */
  hitRatio: number;
}

/** Looks a key up, telling a miss from an error where the cache can. */
export async function lookupIn<T>(cache: Cache, key: string): Promise<CacheLookup<T>> {
  if (cache.lookup) return cache.lookup<T>(key);
  const value = await cache.get<T>(key);
  return value === undefined ? { outcome: 'miss' } : { outcome: 'hit', value };
}

/**
 * A Cache that counts every lookup by level (read from the key, see keys.ts) and outcome. Semantic-bucket reads are
 * not counted here: a bucket found is not an answer served, so the semantic cache counts its own level.
 */
export class InstrumentedCache implements Cache {
  private readonly counts = new Map<CacheLevel, { hit: number; miss: number; error: number }>(
    CACHE_LEVELS.map((level) => [level, { hit: 0, miss: 0, error: 0 }]),
  );

  constructor(
    readonly inner: Cache,
    private readonly deps: InstrumentedCacheDeps = {},
  ) {}

  get kind(): Cache['kind'] {
    return this.inner.kind;
  }

  async get<T>(key: string): Promise<T | undefined> {
    return (await this.lookup<T>(key)).value;
  }

  async lookup<T>(key: string): Promise<CacheLookup<T>> {
    const result = await lookupIn<T>(this.inner, key);
    const level = levelOf(key);
    if (level && level !== 'semantic') this.record(level, result.outcome);
    return result;
  }

  /** Counts an outcome decided elsewhere, such as a semantic hit or a guard refusal. */
  record(level: CacheLevel, outcome: CacheOutcome): void {
    const counts = this.counts.get(level);
    if (counts) counts[outcome] += 1;
    this.deps.requests?.inc({ level, outcome });
    if (level === 'result') this.deps.resultHitRate?.set(this.stats().result.hitRatio);
  }

  stats(): Record<CacheLevel, LevelStats> {
    const out = {} as Record<CacheLevel, LevelStats>;
    for (const [level, { hit, miss, error }] of this.counts) {
      const total = hit + miss + error;
      out[level] = { hit, miss, error, hitRatio: total === 0 ? 0 : hit / total };
    }
    return out;
  }

  set<T>(key: string, value: T, options: CacheSetOptions): Promise<void> {
    return this.inner.set(key, value, options);
  }

  delete(keys: string[]): Promise<void> {
    return this.inner.delete(keys);
  }

  invalidateTags(tags: string[], options?: InvalidateOptions): Promise<number> {
    return this.inner.invalidateTags(tags, options);
  }

  health(): Promise<HealthStatus> {
    return this.inner.health();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  get tryLock(): ((name: string, ttlMs: number) => Promise<CacheLock | 'busy' | 'unavailable'>) | undefined {
    return this.inner.tryLock?.bind(this.inner);
  }
}
