import type { FastifyInstance, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorType, RaglineError } from '../lib/errors.js';
import type { Logger } from '../lib/telemetry/logger.js';
import { QueryTimeoutError } from '../client/ragline-client.js';

export const ApiErrorType = {
  ...ErrorType,
  Unauthorized: 'Unauthorized',
  Forbidden: 'Forbidden',
  Conflict: 'Conflict',
  RateLimited: 'RateLimited',
  Internal: 'InternalError',
} as const;

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

export const ErrorBody = z
  .object({
    error: z.object({
      type: z.string().describe('Stable reason code'),
      message: z.string(),
      requestId: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });

export const errors = (...codes: number[]) => Object.fromEntries(codes.map((code) => [code, ErrorBody]));

/**
 * Every failure leaves as `{ error: { type, message } }`: typed errors with the status their type maps to, a 5xx with
 * only what kind of failure it was and the request id (the detail goes to the log).
 */
export function installErrorHandlers(app: FastifyInstance, logger: Logger | undefined): void {
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
}

/** The `error` event of a stream: what the JSON error of the same failure would say, status aside. */
export function streamError(error: unknown, request: FastifyRequest, logger: Logger | undefined) {
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
