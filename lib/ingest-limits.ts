/** Limits of ingestion shared by the configuration, the client and the workflow. No runtime dependencies. */

/** Largest batch (documents per activity): a larger one risks the activity's timeout and payload limits. */
export const MAX_INGEST_BATCH = 10_000;

/** Why a batch size is invalid, or undefined when it is valid. */
export function batchSizeProblem(batchSize: unknown): string | undefined {
  return typeof batchSize === 'number' && Number.isInteger(batchSize) && batchSize >= 1 && batchSize <= MAX_INGEST_BATCH
    ? undefined
    : `batchSize must be an integer from 1 to ${MAX_INGEST_BATCH}, not ${String(batchSize)}`;
}
