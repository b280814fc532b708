import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { redisClusterNodes, type Config } from '../config.js';
import { DEFAULT_BM25 } from '../retrieval/embedded-store.js';
import type { Logger } from '../telemetry/logger.js';
import { DiskAuditBackend, ParamStore, RedisAuditBackend } from './param-store.js';
import { DEFAULT_PARAMS, paramsProblem, type RetrievalParams } from './params.js';
import { DiskQueryLog, QueryLogWriter, RedisQueryLog } from './query-log.js';

export interface ImprovementStores {
  queryLog: QueryLogWriter;
  params: ParamStore;
  close(): Promise<void>;
}

/** Version 0 of every tenant: what the configuration and the store's tuned BM25 defaults say. */
export function defaultParams(config: Config): RetrievalParams {
  return {
    ...DEFAULT_PARAMS,
    topK: config.RAGLINE_TOP_K,
    bm25K1: DEFAULT_BM25.k1,
    bm25B: DEFAULT_BM25.b,
    titleWeight: DEFAULT_BM25.titleWeight,
    semanticThreshold: config.RAGLINE_SEMANTIC_THRESHOLD,
    fusionWeight: config.RAGLINE_FUSION_DENSE_WEIGHT,
    // RAGLINE_RRF_K may lie outside the loop's bounds; the store's configured value then stays in force.
    ...(paramsProblem({ rrfK: config.RAGLINE_RRF_K }) ? {} : { rrfK: config.RAGLINE_RRF_K }),
  };
}

/**
 * The query log and the parameter store: on Redis when it is configured (shared by every worker, the log as
 * Streams), under `<RAGLINE_DATA_DIR>` otherwise. Their client queues commands while connecting, unlike the
 * cache's: a log write may wait a moment, a cache lookup may not.
 */
export function createImprovementStores(config: Config, logger?: Logger): ImprovementStores {
  const limits = {
    retentionMs: config.RAGLINE_QUERY_LOG_RETENTION_HOURS * 3_600_000,
    maxEntries: config.RAGLINE_QUERY_LOG_MAX_ENTRIES,
  };
  const defaults = defaultParams(config);
  const clusterNodes = redisClusterNodes(config);
  let client: Redis | Cluster | undefined;
  if (clusterNodes && clusterNodes.length > 0) {
    client = new Cluster(
      clusterNodes.map((seed) => {
        const [host, port] = seed.split(':');
        return { host: host || '127.0.0.1', port: Number(port || 6379) };
      }),
      { redisOptions: { commandTimeout: 5000, maxRetriesPerRequest: 2 }, enableAutoPipelining: true },
    );
  } else if (config.REDIS_URL) {
    // Auto-pipelining: every answered query appends to the log, so under load its commands share writes.
    client = new Redis(config.REDIS_URL, { commandTimeout: 5000, maxRetriesPerRequest: 2, enableAutoPipelining: true });
  }
  client?.on('error', (error: Error) => logger?.debug({ err: error.message }, 'query-log redis error'));
  const queryLog = new QueryLogWriter(
    client
      ? new RedisQueryLog(client, config.REDIS_KEY_PREFIX, limits)
      : new DiskQueryLog(path.join(config.RAGLINE_DATA_DIR, 'query-log'), limits),
    { logger },
  );
  const params = new ParamStore(
    client
      ? new RedisAuditBackend(client, config.REDIS_KEY_PREFIX)
      : new DiskAuditBackend(path.join(config.RAGLINE_DATA_DIR, 'params'), (tenant, line) =>
          logger?.warn({ tenant, line }, 'parameter audit log: skipped a torn line (a write cut short by a crash)'),
        ),
    defaults,
    config.RAGLINE_PARAMS_REFRESH_MS,
    (tenant, error) =>
      logger?.warn(
        { tenant, err: error instanceof Error ? error.message : String(error) },
        'parameter store unreadable; serving the last parameters read',
      ),
  );
  return {
    queryLog,
    params,
    async close() {
      await queryLog.flush();
      client?.disconnect();
    },
  };
}
