import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ApiToken } from '../lib/api-tokens.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { RaglineClient } from '../client/ragline-client.js';
import { registerAuth, tenantOf } from './auth.js';
import type { RouteContext, RouteMount, TypedApp } from './context.js';
import { installErrorHandlers } from './errors.js';
import { registerOpenApi, serveOpenApi } from './openapi.js';
import { chatRoutes, documentRoutes, feedbackRoutes, healthRoutes, queryRoutes } from './routes/index.js';

export type { RouteMount } from './context.js';
export { operatorRoutes } from './routes/index.js';

export interface HttpApiOptions {
  /** Configured tokens (RAGLINE_API_TOKENS); none means no authentication, for a loopback-only server. */
  tokens?: ApiToken[];
  /** Requests per minute per token, or per client address without tokens. @default 120 */
  rateLimitPerMinute?: number;
  /** Where the detail of a 5xx goes; the response carries only a reason code and the request id. */
  logger?: Logger;
  /** More routes (feedback, approvals) mounted with the same auth, validation and error format. */
  routes?: RouteMount[];
}

/**
 * ragline's HTTP API for apps in any language. Each request starts a workflow through the client. Requests carry a
 * bearer token bound to one tenant (when tokens are configured), are rate-limited per token, and are validated
 * against the same zod schemas the OpenAPI document at `/openapi.json` is generated from. Errors are
 * `{ error: { type, message } }`; a 5xx says only what kind of failure it was and its request id, the detail goes
 * to the log. Ingestion is not offered on purpose: it reads paths on the worker's host, an operator's action.
 */
export async function createHttpApi(client: RaglineClient, options: HttpApiOptions = {}): Promise<FastifyInstance> {
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
  installErrorHandlers(app, logger);
  await registerOpenApi(app);
  await registerAuth(app, { tokens: options.tokens ?? [], rateLimitPerMinute: options.rateLimitPerMinute });

  const context: RouteContext = { tenantOf, ragline: client };
  // The order routes are mounted in is the order of the OpenAPI document's paths.
  for (const mount of [
    queryRoutes(logger),
    chatRoutes(logger),
    documentRoutes,
    feedbackRoutes,
    ...(options.routes ?? []),
  ])
    mount(app as TypedApp, context);
  healthRoutes(app);
  serveOpenApi(app);
  return app;
}
