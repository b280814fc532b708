import type { HealthStatus } from '../domain.js';

export interface CacheSetOptions {
  ttlMs: number;
  /** Tags (such as `doc:<tenant>:<docId>`) whose invalidation must drop this entry. */
  tags?: string[];
}

export type CacheOutcome = 'hit' | 'miss' | 'error';

export interface CacheLookup<T> {
  outcome: CacheOutcome;
  value?: T;
}

/** A cross-process lock held until released or until its TTL lapses; release and extend never throw. */
export interface CacheLock {
  release(): Promise<void>;
  /**
   * Sets the TTL to `ttlMs` from now if this holder still has the lock: a holder that keeps working keeps it, one
   * that died (a killed worker) loses it within one TTL, so its waiters need not wait out a long one.
   */
  extend?(ttlMs: number): Promise<boolean>;
}

/**
 * A key-value cache of JSON-serialisable values: in-process by default, Redis when configured.
 * Keys are built by the cache-key module only; implementations treat them as opaque.
 * No method throws because the backing store is down: lookups miss and writes are dropped, since a cache outage
 * must never fail a query.
 */
export interface InvalidateOptions {
  required?: boolean;
}

export interface Cache {
  readonly kind: 'memory' | 'redis';
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, options: CacheSetOptions): Promise<void>;
  delete(keys: string[]): Promise<void>;
  /**
   * Drops every entry set with any of these tags; returns how many were dropped. A failure is logged and counted,
   * and returns what was dropped so far — unless `required` (erasure), when it throws a DependencyUnavailable
   * RaglineError so the caller retries instead of leaving the entries behind.
   */
  invalidateTags(tags: string[], options?: InvalidateOptions): Promise<number>;
  health(): Promise<HealthStatus>;
  close(): Promise<void>;
  /** Like `get`, but tells a miss from a failed lookup so metrics can count errors. */
  lookup?<T>(key: string): Promise<CacheLookup<T>>;
  /**
   * Mutual exclusion across processes sharing this cache, against stampedes: a lock, `busy` when another process
   * holds it, `unavailable` when the store cannot say. Caches private to one process leave it out.
   */
  tryLock?(name: string, ttlMs: number): Promise<CacheLock | 'busy' | 'unavailable'>;
}
