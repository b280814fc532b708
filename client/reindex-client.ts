import {
  WorkflowFailedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { ErrorType, InvalidInputError, RaglineError } from '../lib/errors.js';
import { DEFAULT_TENANT } from '../workflows/answer-query-types.js';
import {
  getReindexProgressQuery,
  reindexInputProblem,
  reindexWorkflowId,
  type ReindexEmbeddingsResult,
  type ReindexProgress,
} from '../workflows/reindex-types.js';
import { tenantSearchAttribute } from '../workflows/search-attributes.js';
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
 * Starts (or joins) the tenant's reindex and waits for it, reporting progress from its query as it goes. A failed
 * reindex is a RaglineError of its failure's type (InvalidInput, ConfigurationError for a store that cannot re-embed).
 */
export async function runReindex(
  client: Client,
  options: StartReindexOptions & { onProgress?: (progress: ReindexProgress) => void; pollMs?: number },
): Promise<ReindexEmbeddingsResult> {
  const handle = await startReindex(client, options);
  let done = false;
  const result = handle.result().finally(() => (done = true));
  if (options.onProgress) {
    const onProgress = options.onProgress;
    void (async () => {
      while (!done) {
        try {
          onProgress(await handle.query(getReindexProgressQuery));
        } catch {
          // Between runs (continue-as-new) or just completed: the next poll or the result reports it.
        }
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
      }
    })();
  }
  try {
    return await result;
  } catch (error) {
    if (error instanceof WorkflowFailedError && error.cause instanceof ApplicationFailure) {
      throw new RaglineError((error.cause.type ?? ErrorType.Unavailable) as ErrorType, error.cause.message);
    }
    throw error;
  }
}

/** The tenant's latest reindex progress, or undefined when it never had one. */
export async function reindexProgress(client: Client, tenant = DEFAULT_TENANT): Promise<ReindexProgress | undefined> {
  const problem = reindexInputProblem({}, tenant);
  if (problem) throw new InvalidInputError(problem);
  try {
    return await client.workflow.getHandle(reindexWorkflowId(tenant)).query(getReindexProgressQuery);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) return undefined;
    throw error;
  }
}
