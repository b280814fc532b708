import { redisClusterNodes, type Config } from '../config.js';
import { ErrorType, RaglineError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';
import type { Cache } from './cache.js';
import type { CacheMetrics } from './cache-metrics.js';
import { docTag, staleDocTag } from './keys.js';
import { MemoryCache } from './memory-cache.js';
import { RedisCache } from './redis-cache.js';

// The cache's composition: what the worker and ingestion use. Everything else is imported from its own module.
export type { Cache } from './cache.js';
export { createCacheMetrics, type CacheMetrics } from './cache-metrics.js';
export * from './keys.js';
export { ResultCache } from './result-cache.js';
export { createSemanticCache } from './semantic-cache.js';

/** Redis (single node or cluster) when configured, else the in-process LRU. Never waits for Redis to be reachable. */
export function createCache(config: Config, logger?: Logger, metrics?: CacheMetrics): Cache {
  const clusterNodes = redisClusterNodes(config);
  if (config.REDIS_URL || (clusterNodes && clusterNodes.length > 0)) {
    return new RedisCache({
      url: config.REDIS_URL,
      clusterNodes,
      keyPrefix: config.REDIS_KEY_PREFIX,
      logger,
      onError: (operation) => metrics?.backendErrors.inc({ operation }),
    });
  }
  return new MemoryCache({ maxEntries: config.RAGLINE_CACHE_MAX_ENTRIES, maxBytes: config.RAGLINE_CACHE_MAX_BYTES });
}

/**
 * Drops every cached result that cited one of these documents. Ingestion calls it after deleting or changing
 * documents; the corpus version in result keys already retires older results, so this is the second line.
 */
export async function invalidateDocuments(cache: Cache, tenant: string, docIds: string[]): Promise<number> {
  if (docIds.length === 0) return 0;
  return cache.invalidateTags(docIds.map((docId) => docTag(tenant, docId)));
}

/**
 * Drops everything cached that cited deleted documents, the stale answers of the store-down rung included: erased
 * stays erased, even through a store outage. Throws (DependencyUnavailable) when the cache cannot drop them, so a
 * deletion is retried until they are gone rather than reported done.
 */
export async function invalidateDeletedDocuments(cache: Cache, tenant: string, docIds: string[]): Promise<number> {
  if (docIds.length === 0) return 0;
  const tags = docIds.flatMap((docId) => [docTag(tenant, docId), staleDocTag(tenant, docId)]);
  try {
    return await cache.invalidateTags(tags, { required: true });
  } catch (error) {
    throw new RaglineError(
      ErrorType.Unavailable,
      `the documents are deleted from the index, but the cached answers that cited them could not be dropped ` +
        `(${error instanceof Error ? error.message : String(error)}); delete them again once the cache is reachable`,
      { cause: error },
    );
  }
}
