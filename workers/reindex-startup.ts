import type { Client } from '@temporalio/client';
import { isReembeddable } from '../lib/retrieval/reembedding.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { startReindex } from '../client/reindex-client.js';

/**
 * Starts a reindex for every tenant whose vectors the configured embedder cannot use (none yet, or another
 * model's), as the worker comes up.
 *
 * Start-up rather than the first query or ingestion that meets the mismatch: the embedder is part of the worker's
 * configuration, so a mismatch can only appear when a worker starts with a new one, and starting then gets the new
 * vectors ready soonest. A query that started it would put a Temporal start call on the query path of every
 * degraded answer (and a query is a short, read-only workflow); an ingestion that started it would leave a tenant
 * nobody writes to lexical-only forever. Idempotent: each tenant's reindex has one workflow id, started with
 * USE_EXISTING, so two workers starting together (or a restart mid-reindex) run one, and the restarted worker's
 * reindex resumes from its last staged batch.
 */
export async function startPendingReindexes(params: {
  client: Client;
  taskQueue: string;
  /** The unguarded store: a store that cannot re-embed (Qdrant) starts nothing. */
  store: unknown;
  batchChunks: number;
  heartbeatTimeoutSeconds?: number;
  logger: Logger;
}): Promise<string[]> {
  const { store, logger } = params;
  if (!isReembeddable(store)) return [];
  const tenants = await store.tenantsNeedingReembedding();
  const started: string[] = [];
  for (const tenant of tenants) {
    const handle = await startReindex(params.client, {
      taskQueue: params.taskQueue,
      tenant,
      batchChunks: params.batchChunks,
      ...(params.heartbeatTimeoutSeconds === undefined
        ? {}
        : { heartbeatTimeoutSeconds: params.heartbeatTimeoutSeconds }),
    });
    logger.info(
      { tenant, workflowId: handle.workflowId },
      'tenant vectors do not match the configured embedder: re-embedding in the background (queries answer lexically until it switches)',
    );
    started.push(tenant);
  }
  return started;
}
