import { randomUUID } from 'node:crypto';
import fastifySwagger from '@fastify/swagger';
import fastifyRateLimit from '@fastify/rate-limit';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { authenticate, type ApiCaller, type ApiToken } from '../lib/api-tokens.js';
import { ErrorType, RaglineError } from '../lib/errors.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { DEFAULT_TENANT, MAX_TOP_K, TENANT_PATTERN, type AnswerQueryResult } from '../contracts/query.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: ApiCaller;
  }
  interface FastifyContextConfig {
    /** Served without a token and outside the rate limit (health, the OpenAPI document). */
    public?: boolean;
  }
}

export interface HttpApiOptions {
  /** Configured tokens (RAGLINE_API_TOKENS); none means no authentication, for a loopback-only server. */
  tokens?: ApiToken[];
  /** Requests per minute per token, or per client address without tokens. @default 120 */
  rateLimitPerMinute?: number;
  /** Where the detail of a 5xx goes; the response carries only a reason code and the request id. */
  logger?: Logger;
  /** More routes (feedback, approvals) mounted with the same auth, validation and error format. */
  routes?: Array<(app: TypedApp, context: RouteContext) => void>;
}

export type TypedApp = FastifyInstance & { withTypeProvider: () => ReturnType<FastifyInstance['withTypeProvider']> };

export interface RouteContext {
  /** The tenant a request acts for; throws a 403 error when it asks for another than its token's. */
  tenantOf(request: FastifyRequest, requested?: string): string;
}

export const ApiErrorType = {
  ...ErrorType,
  Unauthorized: 'Unauthorized',
  Forbidden: 'Forbidden',
  Conflict: 'Conflict',
  RateLimited: 'RateLimited',
  Internal: 'InternalError',
} as const;
import { ImprovementClient } from '../client/improvement-client.js';
import { QueryTimeoutError, type RaglineClient } from '../client/ragline-client.js';
import type { AnswerStream } from '../client/answer-stream.js';

const STATUS_BY_TYPE: Record<string, number> = {
  [ErrorType.InvalidInput]: 400,
  [ErrorType.NotFound]: 404,
  [ErrorType.Unavailable]: 503,
};

/** Errors the API's routes raise themselves, whose message is written for the caller. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const Tenant = z.string().regex(TENANT_PATTERN, "1–63 letters, digits, '-' or '_'");

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

export const ErrorBody = z
  .object({
    error: z.object({
      type: z.string().describe('Stable reason code'),
      message: z.string(),
      requestId: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });

const QueryState = z.discriminatedUnion('status', [
  z.object({ queryId: z.string(), status: z.literal('running') }),
  z.object({ queryId: z.string(), status: z.literal('completed'), result: QueryResult }),
  z.object({
    queryId: z.string(),
    status: z.literal('failed'),
    error: z.object({ type: z.string(), message: z.string() }),
  }),
]);

/**
 * Writes an answer stream as Server-Sent Events. The reply is taken over from Fastify (its headers, rate-limit ones
 * included, are kept). A client that goes away only stops the listening: the workflow completes and is cached.
 */
async function sendEventStream(
  request: FastifyRequest,
  reply: FastifyReply,
  stream: AnswerStream,
  logger: Logger | undefined,
): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, value);
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    // Proxies such as nginx would otherwise buffer the tokens into one late chunk.
    'x-accel-buffering': 'no',
  });
  const send = (event: string, data: unknown) => {
    if (!raw.destroyed && !raw.writableEnded) raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  raw.on('close', () => void stream.close());
  // Comments keep idle proxies from closing a stream whose tokens have not started yet.
  const keepAlive = setInterval(() => !raw.destroyed && raw.write(': keep-alive\n\n'), SSE_KEEPALIVE_MS);
  send('start', { queryId: stream.queryId, channel: stream.channel });
  try {
    for await (const event of stream) {
      if (event.type === 'delta') send('token', { text: event.text });
      else if (event.type === 'reset') send('reset', {});
      else send('final', asBody(event.result));
    }
  } catch (error) {
    send('error', streamError(error, request, logger));
  } finally {
    clearInterval(keepAlive);
    if (!raw.writableEnded) raw.end();
  }
}

const SSE_KEEPALIVE_MS = 15_000;

/** The `error` event of a stream: what the JSON error of the same failure would say, status aside. */
function streamError(error: unknown, request: FastifyRequest, logger: Logger | undefined) {
  if (error instanceof QueryTimeoutError) {
    logger?.warn({ requestId: request.id, err: error.message }, 'streamed query timed out');
    return { error: { type: error.reason, message: error.message, requestId: request.id } };
  }
  if (error instanceof RaglineError && (STATUS_BY_TYPE[error.type] ?? 500) < 500) {
    return { error: { type: error.type, message: error.message } };
  }
  logger?.error({ requestId: request.id, err: error }, 'streamed query failed');
  const type = error instanceof RaglineError ? error.type : ApiErrorType.Internal;
  const unavailable = (STATUS_BY_TYPE[type] ?? 500) === 503;
  return {
    error: {
      type,
      message: unavailable ? 'a dependency is unavailable; try again shortly' : 'internal error',
      requestId: request.id,
    },
  };
}

/** The result as the response schema sees it: its listed fields, and any later ones passed through. */
const asBody = (result: AnswerQueryResult) => result as AnswerQueryResult & Record<string, unknown>;

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, ErrorBody]));

/**
 * ragline's HTTP API for apps in any language. Each request starts a workflow through the client. Requests carry a
 * bearer token bound to one tenant (when tokens are configured), are rate-limited per token, and are validated
 * against the same zod schemas the OpenAPI document at `/openapi.json` is generated from. Errors are
 * `{ error: { type, message } }`; a 5xx says only what kind of failure it was and its request id, the detail goes
 * to the log. Ingestion is not offered on purpose: it reads paths on the worker's host, an operator's action.
 */
export async function createHttpApi(client: RaglineClient, options: HttpApiOptions = {}): Promise<FastifyInstance> {
  const tokens = options.tokens ?? [];
  const authRequired = tokens.length > 0;
  const logger = options.logger;
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024,
    // Bounds receiving a request; answering is bounded by the query's own deadline (RaglineClient.ask).
    requestTimeout: 30_000,
    genReqId: () => randomUUID(),
  });
  // JSON only: a text body would otherwise be parsed as a string and reported as a schema mismatch, not a 415.
  app.removeContentTypeParser('text/plain');
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);

  app.setErrorHandler((thrown, request, reply) => {
    const error = thrown as Error & { statusCode?: number; code?: string };
    if (hasZodFastifySchemaValidationErrors(error)) {
      const first = error.validation[0];
      const where = first?.instancePath
        ? `${error.validationContext ?? 'body'}${first.instancePath.replace(/\//g, '.')}`
        : error.validationContext;
      return reply.code(400).send({
        error: { type: ErrorType.InvalidInput, message: `${where ?? 'request'}: ${first?.message ?? 'invalid'}` },
      });
    }
    if (error instanceof HttpError)
      return reply.code(error.statusCode).send({ error: { type: error.type, message: error.message } });
    if (error instanceof QueryTimeoutError) {
      logger?.warn({ requestId: request.id, err: error.message }, 'query timed out');
      return reply.code(503).send({ error: { type: error.reason, message: error.message, requestId: request.id } });
    }
    if (error instanceof RaglineError && (STATUS_BY_TYPE[error.type] ?? 500) < 500) {
      return reply
        .code(STATUS_BY_TYPE[error.type] ?? 400)
        .send({ error: { type: error.type, message: error.message } });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status === 415) {
      return reply.code(415).send({
        error: {
          type: ErrorType.InvalidInput,
          message: `content-type ${request.headers['content-type'] ?? '(none)'} is not accepted; send application/json`,
        },
      });
    }
    if (status && status >= 400 && status < 500) {
      // Fastify's own client errors (body too large, wrong content type, bad JSON) name the problem themselves.
      return reply.code(status).send({ error: { type: ErrorType.InvalidInput, message: error.message } });
    }
    const type = error instanceof RaglineError ? error.type : ApiErrorType.Internal;
    const code = STATUS_BY_TYPE[type] ?? 500;
    logger?.error({ requestId: request.id, err: error }, 'request failed');
    return reply.code(code).send({
      error: {
        type,
        message: code === 503 ? 'a dependency is unavailable; try again shortly' : 'internal error',
        requestId: request.id,
      },
    });
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: { type: ErrorType.NotFound, message: `route ${request.method} ${request.url} not found` } }),
  );

  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'ragline',
        version: '1',
        description: 'Retrieval-augmented answers on Temporal. Every token is bound to one tenant.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearerAuth: [] }],
    },
    transform: jsonSchemaTransform,
    // Puts the schemas registered with an id (QueryRequest, QueryResult, Error) under components, where the refs point.
    transformObject: jsonSchemaTransformObject,
    hideUntagged: false,
  });

  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.public || !authRequired) return;
    const outcome = authenticate(request.headers.authorization, tokens);
    if (!outcome.ok) {
      const message = {
        missing: 'missing bearer token (Authorization: Bearer <token>)',
        invalid: 'invalid token',
        expired: 'token expired',
      }[outcome.reason];
      throw new HttpError(401, ApiErrorType.Unauthorized, message);
    }
    request.caller = outcome.caller;
  });

  await app.register(fastifyRateLimit, {
    global: true,
    max: options.rateLimitPerMinute ?? 120,
    timeWindow: 60_000,
    // After authentication, so the limit is per token; a public route is never limited.
    hook: 'preValidation',
    keyGenerator: (request) => request.caller?.key ?? request.ip,
    allowList: (request) => request.routeOptions.config.public === true,
    errorResponseBuilder: (_request, context) =>
      new HttpError(
        429,
        ApiErrorType.RateLimited,
        `rate limit of ${context.max} requests per minute reached; retry in ${context.after}`,
      ),
  });

  const context: RouteContext = {
    tenantOf(request, requested) {
      if (!request.caller) return requested ?? DEFAULT_TENANT;
      if (requested !== undefined && requested !== request.caller.tenant) {
        throw new HttpError(403, ApiErrorType.Forbidden, `this token may not act for tenant "${requested}"`);
      }
      return request.caller.tenant;
    },
  };
  const api = app.withTypeProvider<ZodTypeProvider>();

  api.post(
    '/v1/query',
    {
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
      const input = { ...request.body, tenant: context.tenantOf(request, request.body.tenant) };
      if (request.query.stream) {
        if (request.query.async) throw new HttpError(400, ErrorType.InvalidInput, 'ask for async=true or stream=true');
        // Bad input and an unreachable Temporal fail here, as JSON with their status, before the stream begins.
        const stream = await client.askStream(input);
        return sendEventStream(request, reply, stream, logger);
      }
      if (request.query.async) {
        const { queryId } = await client.startAsk(input);
        return reply.code(202).send({ queryId, status: 'running' as const });
      }
      return reply.code(200).send(asBody(await client.ask(input)));
    },
  );

  api.get(
    '/v1/queries/:id',
    {
      schema: {
        summary: 'State of a query started with async=true, with its result once completed',
        params: z.object({ id: z.string().min(1).max(300) }),
        response: { 200: QueryState, ...errors(401, 404, 429, 500, 503) },
      },
    },
    async (request) => {
      const state = await client.queryState(request.params.id, context.tenantOf(request));
      if (!state) throw new HttpError(404, ErrorType.NotFound, `no query "${request.params.id}"`);
      return state.status === 'completed' ? { ...state, result: asBody(state.result) } : state;
    },
  );

  api.delete(
    '/v1/documents/:id',
    {
      schema: {
        summary: "Delete a document of the caller's tenant; answers that cited it leave the cache",
        params: z.object({ id: z.string().min(1).max(500) }),
        querystring: z.strictObject({ tenant: Tenant.optional() }),
        response: {
          200: z.object({ deleted: z.array(z.string()), missing: z.array(z.string()), corpusVersion: z.number() }),
          ...errors(400, 401, 403, 429, 500, 503),
        },
      },
    },
    async (request) => client.deleteDocuments([request.params.id], context.tenantOf(request, request.query.tenant)),
  );

  const improvement = new ImprovementClient(client.client, client.taskQueue);
  api.post(
    '/v1/feedback',
    {
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
      const tenant = request.caller ? context.tenantOf(request, request.body.tenant) : request.body.tenant;
      return reply.code(201).send(await improvement.feedback({ ...request.body, tenant }));
    },
  );

  for (const mount of options.routes ?? []) mount(app as TypedApp, context);

  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ ok: true }));
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
  return app;
}
