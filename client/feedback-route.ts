import type { FastifyInstance } from 'fastify';
import type { RecordFeedbackInput } from '../workflows/feedback.js';
import type { ImprovementClient } from './improvement-client.js';

/**
 * `POST /v1/feedback {queryId, score, comment?}`: a user's rating of an answer, joined to the query log. Self-contained
 * so any Fastify app can mount it: `app.register(feedbackRoutes(improvementClient))`. Answers 201 with
 * `{queryId, tenant}`; 400 for a bad score or comment, 404 for a query id the log does not hold (the app's error
 * handler maps ragline's error types to statuses).
 */
export function feedbackRoutes(improvement: ImprovementClient) {
  return async (app: FastifyInstance): Promise<void> => {
    app.post<{ Body: RecordFeedbackInput }>(
      '/v1/feedback',
      {
        schema: {
          body: {
            type: 'object',
            required: ['queryId', 'score'],
            properties: {
              queryId: { type: 'string', minLength: 1, maxLength: 512 },
              score: { type: 'integer', minimum: 1, maximum: 5 },
              comment: { type: 'string', maxLength: 2000 },
            },
            additionalProperties: false,
          },
        },
      },
      async (request, reply) => reply.code(201).send(await submitFeedback(improvement, request.body)),
    );
  };
}

/** The route's work, for callers that are not Fastify. */
export function submitFeedback(improvement: ImprovementClient, body: RecordFeedbackInput) {
  return improvement.feedback({ queryId: body.queryId, score: body.score, comment: body.comment });
}
