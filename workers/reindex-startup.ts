import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { DEFAULT_TENANT } from '../contracts/query.js';
import { reindexInputProblem, reindexWorkflowId } from '../contracts/reindex.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';
import { InvalidInputError } from '../lib/errors.js';
import { isReembeddable } from '../lib/retrieval/reembedding.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { reindexEmbeddingsWorkflow } from '../workflows/reindex-embeddings.js';

export interface StartReindexOptions {
  taskQueue: string;
  tenant?: string;
  batchChunks?: number;
  heartbeatTimeoutSeconds?: number;
}

/**
 * Starts the tenant's reindex, or returns the one already running: one workflow id per tenant with the
 * USE_EXISTING conflict policy, so two workers starting up (or a worker and a CLI) never run two. A finished
 * reindex's id may be used again (ALLOW_DUPLICATE): the next model change needs a new run. Bad input is an
 * InvalidInputError, before anything starts.
 */
export async function startReindex(
  client: Client,
  options: StartReindexOptions,
): Promise<WorkflowHandleWithFirstExecutionRunId<typeof reindexEmbeddingsWorkflow>> {
  const tenant = options.tenant ?? DEFAULT_TENANT;
  const input = {
    tenant,
    ...(options.batchChunks === undefined ? {} : { batchChunks: options.batchChunks }),
    ...(options.heartbeatTimeoutSeconds === undefined
      ? {}
      : { heartbeatTimeoutSeconds: options.heartbeatTimeoutSeconds }),
  };
  const problem = reindexInputProblem(input, tenant);
  if (problem) throw new InvalidInputError(problem);
  return client.workflow.start<typeof reindexEmbeddingsWorkflow>('reindexEmbeddingsWorkflow', {
    taskQueue: options.taskQueue,
    workflowId: reindexWorkflowId(tenant),
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    workflowIdReusePolicy: 'ALLOW_DUPLICATE',
    typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
  });
}

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
  /** The unguarded store: a store that cannot re-embed starts nothing. */
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
