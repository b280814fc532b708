import { ApplicationFailure } from '@temporalio/common';
import { ErrorType, RaglineError } from '../lib/errors.js';
import { feedbackProblem } from '../lib/improve/feedback.js';
import type { QueryLogWriter } from '../lib/improve/query-log.js';
import type { RecordFeedbackInput, RecordFeedbackResult } from '../contracts/feedback.js';
import { atBoundary } from './failures.js';

export interface FeedbackDeps {
  /** The query log whose entries the ratings are joined to. */
  queryLog: QueryLogWriter;
}

/** The feedback workflow's one activity (workflows/feedback.ts): a user's rating joined to a logged query. */
export const createFeedbackActivities = (deps: FeedbackDeps) => ({
  /** Joins feedback to a logged query; an id the log does not hold is refused. */
  async recordFeedback(input: RecordFeedbackInput): Promise<RecordFeedbackResult> {
    return atBoundary(async () => {
      const problem = feedbackProblem(input);
      if (problem)
        throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
      // A query answered moments ago may still sit in this worker's write buffer.
      await deps.queryLog.flush();
      const found = await deps.queryLog.store.find(input.queryId);
      if (!found || (input.tenant !== undefined && found.tenant !== input.tenant))
        throw new RaglineError(ErrorType.NotFound, `no logged query with id ${input.queryId}`);
      await deps.queryLog.store.addFeedback({
        queryId: input.queryId,
        tenant: found.tenant,
        at: new Date().toISOString(),
        score: input.score,
        comment: input.comment,
      });
      return { queryId: input.queryId, tenant: found.tenant };
    });
  },
});
