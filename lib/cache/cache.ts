import type { HealthStatus } from '../domain.js';

export interface CacheSetOptions {
  ttlMs: number;
  /** Tags (such as `doc:<tenant>:<docId>`) whose invalidation must drop this entry. */
  tags?: string[];
}

/**
 * A key-value cache of JSON-serialisable values: in-process by default, Redis when configured.
 * Keys are built by the cache-key module only; implementations treat them as opaque.
 */
export interface Cache {
  readonly kind: 'memory' | 'redis';
  get<T>(key: string): Promise<T | undefined>;
  set<T>(key: string, value: T, options: CacheSetOptions): Promise<void>;
  delete(keys: string[]): Promise<void>;
  /** Drops every entry set with any of these tags; returns how many were dropped. */
  invalidateTags(tags: string[]): Promise<number>;
  health(): Promise<HealthStatus>;
  close(): Promise<void>;
}
