import Fastify, { type FastifyInstance } from 'fastify';
import { ErrorType, RaglineError } from '../lib/errors.js';
import type { AnswerQueryInput } from '../workflows/answer-query-types.js';
import { feedbackRoutes } from './feedback-route.js';
import { ImprovementClient } from './improvement-client.js';
import type { RaglineClient } from './ragline-client.js';

const STATUS_BY_TYPE: Record<string, number> = {
  [ErrorType.InvalidInput]: 400,
  [ErrorType.NotFound]: 404,
  [ErrorType.Configuration]: 500,
  [ErrorType.Unavailable]: 503,
};

/**
 * ragline's HTTP API: each request starts a workflow through the client and answers with its result. Errors are
 * `{ error: { type, message } }` with a status that says whose fault it was. Ingestion is not offered here on
 * purpose: it reads paths on the worker's host, which is an operator's action (`ragline ingest`), not a caller's.
 */
export function createHttpApi(client: RaglineClient): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: 1024 * 1024 });

  app.setErrorHandler((thrown, _request, reply) => {
    const error = thrown as Error & { statusCode?: number };
    if (error instanceof RaglineError) {
      return reply
        .code(STATUS_BY_TYPE[error.type] ?? 502)
        .send({ error: { type: error.type, message: error.message } });
    }
    const status = error.statusCode;
    if (status && status >= 400 && status < 500) {
      return reply.code(status).send({ error: { type: ErrorType.InvalidInput, message: error.message } });
    }
    return reply.code(500).send({ error: { type: 'InternalError', message: error.message } });
  });

  app.post<{ Body: AnswerQueryInput }>(
    '/v1/query',
    {
      schema: {
        body: {
          type: 'object',
          required: ['query'],
          properties: {
            query: { type: 'string' },
            tenant: { type: 'string' },
            userId: { type: 'string' },
            options: {
              type: 'object',
              properties: {
                topK: { type: 'integer' },
                bypassCache: { type: 'boolean' },
                deadlineMs: { type: 'integer' },
              },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
      },
    },
    async (request) => client.ask(request.body),
  );

  app.delete<{ Params: { id: string }; Querystring: { tenant?: string } }>('/v1/documents/:id', async (request) =>
    client.deleteDocuments([request.params.id], request.query.tenant),
  );

  void app.register(feedbackRoutes(new ImprovementClient(client.client, client.taskQueue)));

  app.get('/healthz', async () => ({ ok: true }));
  return app;
}
