import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import type { RecordFeedbackInput, RecordFeedbackResult } from '../contracts/feedback.js';

type Activities = ReturnType<typeof createActivities>;

const acts = proxyActivities<Activities>({
  startToCloseTimeout: '10s',
  retry: { maximumAttempts: 3, initialInterval: '200ms', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/**
 * Joins a user's rating to a logged query. A workflow, so the CLI and the HTTP API reach the worker that owns the
 * query log the same way they reach everything else; an unknown query id fails it with `NotFound`.
 */
export async function recordFeedbackWorkflow(input: RecordFeedbackInput): Promise<RecordFeedbackResult> {
  return acts.recordFeedback(input);
}
