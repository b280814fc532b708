import type { Counter } from 'prom-client';
import type { Cache } from './cache.js';
import { lookupIn } from './instrumented-cache.js';
import { docTag, resultKey, type ResultScope } from './keys.js';
import type { SemanticCache } from './semantic-cache.js';

export interface ResultCacheOptions {
  /** The plain cache: this class counts the result level itself. */
  cache: Cache;
  /** Result TTL (cacheTtls(config).result). */
  ttlMs: number;
  /** Near-duplicate lookups after an exact miss; off when undefined. */
  semantic?: SemanticCache;
  /** `rag_cache_requests_total`. */
  requests?: Pick<Counter<'level' | 'outcome'>, 'inc'>;
}

export type ResultLookup<T> =
  | { status: 'hit'; level: 'result'; key: string; value: T }
  | { status: 'hit'; level: 'semantic'; key: string; value: T; similarity: number; matchedQuestion: string }
  /** `outcome` is `error` when the store could not be read, which callers treat as a miss. */
  | { status: 'miss'; key: string; outcome: 'miss' | 'error' };

/**
 * The query path's view of the cache: an exact lookup by result key, then a guarded near-duplicate lookup, and a
 * write that tags the answer with the documents it cites and records the question for near-duplicates. Nothing
 * here throws because the cache is down.
 */
export class ResultCache {
  constructor(private readonly options: ResultCacheOptions) {}

  /** `semanticThreshold` overrides the configured one (a tenant's parameter set). */
  async lookup<T>(
    scope: ResultScope,
    query: string,
    options: { semanticThreshold?: number } = {},
  ): Promise<ResultLookup<T>> {
    const key = resultKey(scope, query);
    const found = await lookupIn<T>(this.options.cache, key);
    this.options.requests?.inc({ level: 'result', outcome: found.outcome });
    if (found.outcome === 'hit' && found.value !== undefined) {
      return { status: 'hit', level: 'result', key, value: found.value };
    }
    const outcome = found.outcome === 'error' ? 'error' : 'miss';
    // With the store unreachable the bucket cannot be read either; skip the second round trip.
    if (outcome === 'error' || !this.options.semantic) return { status: 'miss', key, outcome };
    const match = await this.options.semantic.get<T>(scope, query, options.semanticThreshold);
    if (!match) return { status: 'miss', key, outcome };
    return {
      status: 'hit',
      level: 'semantic',
      key: match.resultKey,
      value: match.value,
      similarity: match.similarity,
      matchedQuestion: match.question,
    };
  }

  /** Stores an answer under its exact key, tagged with the documents it cites; returns the key. Best-effort. */
  async store<T>(scope: ResultScope, query: string, value: T, citedDocIds: string[]): Promise<string> {
    const key = resultKey(scope, query);
    const tags = [...new Set(citedDocIds)].map((docId) => docTag(scope.tenant, docId));
    await this.options.cache.set(key, value, { ttlMs: this.options.ttlMs, tags });
    await this.options.semantic?.remember(scope, query, key);
    return key;
  }
}
