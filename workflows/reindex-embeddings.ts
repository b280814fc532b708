import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { ReindexActivities } from '../activities/reindex.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import { DEFAULT_TENANT } from '../contracts/query.js';
import {
  DEFAULT_REINDEX_BATCH_CHUNKS,
  DEFAULT_REINDEX_HEARTBEAT_SECONDS,
  getReindexProgressQuery,
  reindexEtaSeconds,
  reindexInputProblem,
  type ReindexEmbeddingsInput,
  type ReindexEmbeddingsResult,
  type ReindexProgress,
} from '../contracts/reindex.js';

/** Batches before the workflow continues as new (sooner if Temporal suggests it): a history stays a few MB. */
const DEFAULT_BATCHES_PER_RUN = 500;
/** Refused switches in a row with nothing left to stage: the store and the switch disagree, which a retry won't fix. */
const MAX_IDLE_SWITCHES = 3;

/** The reindex's state and its query handler; the workflow function below only drives it. */
class ReindexRun {
  readonly progress: ReindexProgress;

  constructor(tenant: string, resume: ReindexProgress | undefined) {
    const now = new Date().toISOString();
    this.progress = resume ?? {
      tenant,
      phase: 'starting',
      chunksDone: 0,
      chunksTotal: 0,
      chunksEmbedded: 0,
      batches: 0,
      startedAt: now,
      updatedAt: now,
      runs: 0,
    };
    this.progress.runs += 1;
    // A query's failure goes to its caller only: refusing odd arguments here can never fail the workflow.
    setHandler(getReindexProgressQuery, (...args: unknown[]) => {
      if (args.length > 0) {
        throw ApplicationFailure.create({
          type: ErrorType.InvalidInput,
          message: `getReindexProgress takes no arguments, got ${args.length}`,
          nonRetryable: true,
        });
      }
      return this.progress;
    });
  }

  /** Counts a staged batch (or the totals the store reports) and the ETA at the rate since the start. */
  record(step: { chunks?: number; chunksStaged: number; chunksTotal: number }): void {
    const progress = this.progress;
    progress.chunksDone = step.chunksStaged;
    progress.chunksTotal = step.chunksTotal;
    if (step.chunks !== undefined) {
      progress.batches += 1;
      progress.chunksEmbedded += step.chunks;
    }
    const now = Date.now();
    progress.updatedAt = new Date(now).toISOString();
    const eta = reindexEtaSeconds(progress, now);
    if (eta === undefined) delete progress.etaSeconds;
    else progress.etaSeconds = eta;
  }
}

/**
 * Re-embeds a tenant with the configured embedder in the background: batches of new vectors are staged by the store
 * while queries keep the live index, then one switch makes them live. Each batch stages documents that have no
 * staged vector yet, so a batch retried on another worker (its first worker killed) redoes only itself; ingestion
 * meanwhile stages its own documents, and the switch refuses until every live chunk is covered. Idempotent per
 * tenant through its workflow id (`reindexWorkflowId`); a tenant that needs nothing completes as `not-needed`.
 */
export async function reindexEmbeddingsWorkflow(input: ReindexEmbeddingsInput = {}): Promise<ReindexEmbeddingsResult> {
  const tenant = input.tenant ?? DEFAULT_TENANT;
  const problem = reindexInputProblem(input, tenant);
  if (problem) throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
  const batchChunks = input.batchChunks ?? DEFAULT_REINDEX_BATCH_CHUNKS;
  const heartbeatSeconds = input.heartbeatTimeoutSeconds ?? DEFAULT_REINDEX_HEARTBEAT_SECONDS;
  // A background job: it waits out an embedder outage (retries without limit, backing off to a minute) rather
  // than give up; bad input and configuration still fail it at once.
  const reindex = proxyActivities<ReindexActivities>({
    startToCloseTimeout: '15m',
    heartbeatTimeout: `${heartbeatSeconds}s`,
    retry: {
      initialInterval: '1s',
      maximumInterval: '1m',
      nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
    },
  });
  const batchesPerRun = input.batchesPerRun ?? DEFAULT_BATCHES_PER_RUN;
  const run = new ReindexRun(tenant, input.resume?.progress);
  const progress = run.progress;

  if (!input.resume) {
    const status = await reindex.beginReembedding({ tenant });
    if (status.live !== undefined) progress.from = status.live;
    if (status.configured !== undefined) progress.to = status.configured;
    run.record({ chunksStaged: status.staging?.chunksStaged ?? 0, chunksTotal: status.chunks });
    if (!status.needed) {
      progress.phase = 'not-needed';
      progress.chunksDone = status.chunks;
      await condition(allHandlersFinished);
      return { ...progress, switched: false };
    }
  }
  progress.phase = 'embedding';
  let idleSwitches = 0;
  for (let batches = 0; ; batches++) {
    if (batches >= batchesPerRun || workflowInfo().continueAsNewSuggested) {
      await condition(allHandlersFinished);
      return continueAsNew<typeof reindexEmbeddingsWorkflow>({ ...input, tenant, resume: { progress } });
    }
    const staged = await reindex.reembedBatch({ tenant, maxChunks: batchChunks });
    if (staged.documents > 0) {
      idleSwitches = 0;
      run.record(staged);
      continue;
    }
    run.record({ chunksStaged: staged.chunksStaged, chunksTotal: staged.chunksTotal });
    progress.phase = 'switching';
    const switched = await reindex.switchEmbeddings({ tenant });
    if (switched.switched) {
      progress.phase = 'done';
      progress.to = switched.identity;
      progress.corpusVersion = switched.corpusVersion;
      run.record({ chunksStaged: progress.chunksTotal, chunksTotal: progress.chunksTotal });
      delete progress.etaSeconds;
      await condition(allHandlersFinished);
      return { ...progress, switched: true };
    }
    // Documents ingested or changed since the last batch: stage them, then switch again.
    progress.phase = 'embedding';
    idleSwitches += 1;
    if (idleSwitches >= MAX_IDLE_SWITCHES) {
      throw ApplicationFailure.create({
        type: ErrorType.Unavailable,
        message: `tenant ${tenant}: ${switched.chunksRemaining} chunks still lack new vectors, but none can be staged`,
        nonRetryable: true,
      });
    }
  }
}
