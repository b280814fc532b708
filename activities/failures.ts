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
