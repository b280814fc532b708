import { WorkflowFailedError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, InvalidInputError, RaglineError } from '../lib/errors.js';
import { DEFAULT_TENANT } from '../contracts/query.js';
import {
  getReindexProgressQuery,
  reindexInputProblem,
  reindexWorkflowId,
  type ReindexEmbeddingsResult,
  type ReindexProgress,
} from '../contracts/reindex.js';
import { startReindex, type StartReindexOptions } from '../workers/reindex-startup.js';

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
