import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES, RaglineError } from '../lib/errors.js';

/** Turns an adapter error into the ApplicationFailure its retry policy expects. */
export function toApplicationFailure(error: unknown): ApplicationFailure {
  if (error instanceof ApplicationFailure) return error;
  if (error instanceof RaglineError) {
    return ApplicationFailure.create({
      type: error.type,
      message: error.message,
      nonRetryable: NON_RETRYABLE_ERROR_TYPES.includes(error.type),
      nextRetryDelay: error.retryAfterMs,
      cause: error,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return ApplicationFailure.create({
    type: ErrorType.Unavailable,
    message,
    cause: error instanceof Error ? error : undefined,
  });
}

/** Runs an activity body, mapping whatever it throws at the boundary. */
export async function atBoundary<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    throw toApplicationFailure(error);
  }
}

/** Floor for an ingestion retry behind an open breaker: a probe may already be in flight when the delay reads 0. */
const MIN_INGEST_RETRY_MS = 1000;

/**
 * The boundary for ingestion and deletion. A query has a fallback, so an open breaker fails its activity at once
 * (non-retryable CircuitOpen); ingestion has none, and a background job is expected to wait out an outage rather
 * than drop its batch. So here an open breaker becomes a retryable DependencyUnavailable whose next attempt comes
 * when the breaker will let a probe through — that attempt is the probe, and the store that queries found down is
 * not hammered meanwhile.
 */
export async function atIngestionBoundary<T>(body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof RaglineError && error.type === ErrorType.CircuitOpen) {
      throw ApplicationFailure.create({
        type: ErrorType.Unavailable,
        message: `${error.message}; retrying when it lets a probe through`,
        nextRetryDelay: Math.max(MIN_INGEST_RETRY_MS, error.retryAfterMs ?? 0),
        cause: error,
      });
    }
    throw toApplicationFailure(error);
  }
}
