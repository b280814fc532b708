import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorType } from '../../lib/errors.js';
import type { Logger } from '../../lib/telemetry/logger.js';
import { MAX_TOP_K, type AnswerQueryResult } from '../../contracts/query.js';
import type { AnswerStream } from '../../client/answer-stream.js';
import type { RouteContext, TypedApp } from '../context.js';
import { errors, HttpError, streamError } from '../errors.js';
import { writeEventStream } from '../event-stream.js';
import { Tenant } from '../schemas.js';

export const QueryBody = z
  .strictObject({
    query: z.string().min(1).describe('The question, in plain text'),
    tenant: Tenant.optional().describe("Tenant whose corpus answers; must be the token's tenant when given"),
    userId: z.string().max(200).optional(),
    options: z
      .strictObject({
        topK: z.int().min(1).max(MAX_TOP_K).optional(),
        bypassCache: z.boolean().optional(),
        deadlineMs: z.int().min(1000).max(600_000).optional(),
      })
      .optional(),
  })
  .meta({ id: 'QueryRequest' });

const QueryParams = z.strictObject({
  async: z.stringbool().optional().describe('Return the workflow id at once (202) instead of the answer'),
  stream: z
    .stringbool()
    .optional()
    .describe('Answer with Server-Sent Events: the tokens as they are written, then the result (text/event-stream)'),
});

const SourceSchema = z.object({
  docId: z.string(),
  chunkId: z.string(),
  title: z.string(),
  snippet: z.string(),
  score: z.number(),
  n: z.int(),
});

// Loose so fields the workflow gains later reach callers without an API release; the listed ones are the contract.
export const QueryResult = z
  .looseObject({
    queryId: z.string(),
    tenant: z.string(),
    answer: z.string(),
    sources: z.array(SourceSchema),
    qualityScore: z.number(),
    qualityTier: z.enum(['excellent', 'good', 'fair', 'poor']),
    cache: z.object({
      result: z.enum(['hit', 'miss', 'bypass', 'error']),
      semantic: z.enum(['hit', 'miss', 'bypass', 'error', 'refused']).optional(),
      llm: z.enum(['hit', 'miss']).optional(),
    }),
    degraded: z.boolean(),
    fallbackReason: z.string().optional(),
    model: z.string(),
    citations: z.array(z.int()).optional(),
    timingsMs: z.object({
      total: z.number(),
      cache: z.number().optional(),
      retrieval: z.number().optional(),
      generation: z.number().optional(),
    }),
  })
  .meta({ id: 'QueryResult' });

const QueryState = z.discriminatedUnion('status', [
  z.object({ queryId: z.string(), status: z.literal('running') }),
  z.object({ queryId: z.string(), status: z.literal('completed'), result: QueryResult }),
  z.object({
    queryId: z.string(),
    status: z.literal('failed'),
    error: z.object({ type: z.string(), message: z.string() }),
  }),
]);

/** The result as the response schema sees it: its listed fields, and any later ones passed through. */
const asBody = (result: AnswerQueryResult) => result as AnswerQueryResult & Record<string, unknown>;

/**
 * Asking: `POST /v1/query` (the answer, its workflow id with `async=true`, or Server-Sent Events with `stream=true`)
 * and `GET /v1/queries/:id` for a query started with `async=true`.
 */
export function queryRoutes(logger: Logger | undefined) {
  return (app: TypedApp, { ragline, tenantOf }: RouteContext) => {
    const api = app.withTypeProvider<ZodTypeProvider>();

    api.post(
      '/v1/query',
      {
        config: { scope: 'query' },
        schema: {
          summary: 'Answer a question',
          description: 'Runs the query workflow and answers with its result, or with its id when `async=true`.',
          body: QueryBody,
          querystring: QueryParams,
          response: {
            200: {
              description:
                'The answer; with `stream=true` a text/event-stream instead. Its events: `start` ({queryId, channel}: ' +
                'channel is `none` when no token channel reaches this server, and the answer then comes whole), `token` ' +
                '({text}, in order), `reset` ({}: drop the text shown so far, the answer is being written again), then ' +
                'one `final` (a QueryResult, the answer of record) or one `error` (an Error).',
              content: {
                'application/json': { schema: QueryResult },
                'text/event-stream': { schema: z.string().describe('Server-Sent Events, as described above') },
              },
            },
            202: z.object({ queryId: z.string(), status: z.literal('running') }),
            ...errors(400, 401, 403, 413, 415, 429, 500, 503),
          },
        },
      },
      async (request, reply) => {
        const input = { ...request.body, tenant: tenantOf(request, request.body.tenant) };
        if (request.query.stream) {
          if (request.query.async)
            throw new HttpError(400, ErrorType.InvalidInput, 'ask for async=true or stream=true');
          // Bad input and an unreachable Temporal fail here, as JSON with their status, before the stream begins.
          const stream = await ragline.askStream(input);
          return sendEventStream(request, reply, stream, logger);
        }
        if (request.query.async) {
          const { queryId } = await ragline.startAsk(input);
          return reply.code(202).send({ queryId, status: 'running' as const });
        }
        return reply.code(200).send(asBody(await ragline.ask(input)));
      },
    );

    api.get(
      '/v1/queries/:id',
      {
        config: { scope: 'query' },
        schema: {
          summary: 'State of a query started with async=true, with its result once completed',
          params: z.object({ id: z.string().min(1).max(300) }),
          response: { 200: QueryState, ...errors(401, 404, 429, 500, 503) },
        },
      },
      async (request) => {
        const state = await ragline.queryState(request.params.id, tenantOf(request));
        if (!state) throw new HttpError(404, ErrorType.NotFound, `no query "${request.params.id}"`);
        return state.status === 'completed' ? { ...state, result: asBody(state.result) } : state;
      },
    );
  };
}

/** `POST /v1/feedback`: a rating of an answer, joined to the query log by the improvement loop. */
export function feedbackRoutes(app: TypedApp, { ragline, tenantOf }: RouteContext): void {
  app.withTypeProvider<ZodTypeProvider>().post(
    '/v1/feedback',
    {
      config: { scope: 'query' },
      schema: {
        summary: "Rate an answer of the caller's tenant (1 useless … 5 exactly right), joined to the query log",
        body: z.strictObject({
          queryId: z.string().min(1).max(512),
          score: z.number().int().min(1).max(5),
          comment: z.string().max(2000).optional(),
          tenant: Tenant.optional(),
        }),
        response: {
          201: z.object({ queryId: z.string(), tenant: z.string() }),
          ...errors(400, 401, 403, 404, 429, 500, 503),
        },
      },
    },
    async (request, reply) => {
      // With tokens, a query of another tenant is reported as unknown, so its existence does not leak.
      const tenant = request.caller ? tenantOf(request, request.body.tenant) : request.body.tenant;
      return reply.code(201).send(await ragline.improvement.feedback({ ...request.body, tenant }));
    },
  );
}

/** Writes an answer stream as named Server-Sent Events: start, token, reset, then final or error. */
function sendEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: AnswerStream,
  logger: Logger | undefined,
): Promise<void> {
  return writeEventStream(reply, stream, async (write) => {
    const send = (event: string, data: unknown) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    send('start', { queryId: stream.queryId, channel: stream.channel });
    try {
      for await (const event of stream) {
        if (event.type === 'delta') send('token', { text: event.text });
        else if (event.type === 'reset') send('reset', {});
        else send('final', asBody(event.result));
      }
    } catch (error) {
      send('error', streamError(error, request, logger));
    }
  });
}
