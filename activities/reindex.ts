import { ApplicationFailure } from '@temporalio/common';
import type { ChunkStore } from '../lib/domain.js';
import { ErrorType } from '../lib/errors.js';
import {
  isReembeddable,
  ReembeddingUnsupportedError,
  type EmbeddingStatus,
  type ReembeddableStore,
  type StageResult,
  type SwitchResult,
} from '../lib/retrieval/reembedding.js';
import { tenantProblem } from '../lib/tenant.js';
import { atIngestionBoundary } from './failures.js';
import { keepAlive } from './heartbeat.js';

export interface ReindexDeps {
  /**
   * The store itself, not its breaker-guarded view (which exposes only ChunkStore): a reindex is a background job
   * that waits out an outage through its retry policy. A store that cannot re-embed is refused with a typed error.
   */
  store: ChunkStore | ReembeddableStore;
  /** The store's kind, for the refusal's message. */
  kind: string;
}

/** The activities of background re-embedding (workflows/reindex-embeddings.ts). */
export const createReindexActivities = (deps: ReindexDeps) => {
  const reembeddable = (tenant: string): ReembeddableStore => {
    const problem = tenantProblem(tenant);
    if (problem)
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
    if (!isReembeddable(deps.store)) throw new ReembeddingUnsupportedError(deps.kind);
    return deps.store;
  };

  return {
    /** Opens the tenant's staging area when the configured embedder cannot use its live vectors. */
    async beginReembedding(input: { tenant: string }): Promise<EmbeddingStatus> {
      return atIngestionBoundary(async () => reembeddable(input.tenant).beginReembedding(input.tenant));
    },

    /** Embeds and stages the next batch: documents with no staged vector, so a retry never redoes a finished one. */
    async reembedBatch(input: { tenant: string; maxChunks: number }): Promise<StageResult> {
      return atIngestionBoundary(() =>
        keepAlive(() => reembeddable(input.tenant).stageEmbeddings(input.tenant, { maxChunks: input.maxChunks })),
      );
    },

    /** The one switch to the staged vectors, or how many chunks still need one. */
    async switchEmbeddings(input: { tenant: string }): Promise<SwitchResult> {
      return atIngestionBoundary(() => keepAlive(() => reembeddable(input.tenant).switchEmbeddings(input.tenant)));
    },
  };
};

export type ReindexActivities = ReturnType<typeof createReindexActivities>;
