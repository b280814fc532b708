import fastifyRateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticate, missingScope, type ApiCaller, type ApiToken, type Scope } from '../lib/api-tokens.js';
import { isLoopbackHostHeader, isLoopbackName } from '../lib/loopback.js';
import { ErrorType } from '../lib/errors.js';
import { DEFAULT_TENANT } from '../contracts/query.js';
import { ApiErrorType, HttpError } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    caller?: ApiCaller;
  }
  interface FastifyContextConfig {
    /** Served without a token and outside the rate limit (health, the OpenAPI document). */
    public?: boolean;
    /** What a token needs to call the route; every route that is not public names one. */
    scope?: Scope;
  }
}

export interface AuthOptions {
  /** Configured tokens; none means no authentication, for a loopback-only server. */
  tokens: ApiToken[];
  /** Requests per minute per token, or per client address without tokens. @default 120 */
  rateLimitPerMinute?: number;
}

const SCOPE_HINT: Record<Scope, string> = {
  query: 'ragline token create --tenant T',
  ingest: 'ragline token create --tenant T --scope ingest',
  operator: 'ragline token create --tenant T --operator NAME',
};

/** True for an `Origin` of a page served from this machine (`http://localhost:3000`); `null` and others are not. */
function isLoopbackOrigin(origin: string): boolean {
  try {
    return isLoopbackName(new URL(origin).hostname);
  } catch {
    return false;
  }
}

/**
 * Bearer tokens and their scopes, then the rate limit: a request without a valid token (when tokens are configured)
 * is a 401, one whose token lacks the route's scope a 403 naming it, and each token (or client address, without
 * tokens) gets `rateLimitPerMinute` requests. Public routes skip all three. Without tokens the server is for this
 * machine alone, so it refuses what a web page could send it: another Host (DNS rebinding) or another site's Origin.
 */
export async function registerAuth(app: FastifyInstance, options: AuthOptions): Promise<void> {
  const { tokens } = options;
  const authRequired = tokens.length > 0;
  // A route added without saying who may call it would be open to every token: refuse to start instead.
  app.addHook('onRoute', (route) => {
    const config = route.config as { public?: boolean; scope?: Scope } | undefined;
    if (!config?.public && !config?.scope)
      throw new Error(`route ${String(route.method)} ${route.url} names no scope (config.scope) and is not public`);
  });
  app.addHook('onRequest', async (request) => {
    if (!authRequired) {
      if (!isLoopbackHostHeader(request.headers.host))
        throw new HttpError(
          403,
          ApiErrorType.Forbidden,
          'without API tokens this server answers only requests addressed to this machine (Host localhost or ' +
            '127.0.0.1); set RAGLINE_API_TOKENS to serve others',
        );
      const origin = request.headers.origin;
      if ((origin !== undefined && !isLoopbackOrigin(origin)) || request.headers['sec-fetch-site'] === 'cross-site')
        throw new HttpError(
          403,
          ApiErrorType.Forbidden,
          'cross-site request refused: without API tokens only pages served from this machine may call this server',
        );
      return;
    }
    if (request.routeOptions.config.public) return;
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
    const scope = request.routeOptions.config.scope;
    const missing = scope === undefined ? undefined : missingScope(outcome.caller, scope);
    if (missing)
      throw new HttpError(
        403,
        ApiErrorType.Forbidden,
        `this token lacks the ${missing} scope this route needs (${SCOPE_HINT[missing]})`,
      );
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
}

/** The tenant a request acts for: its token's, and a 403 when it asks for another; without tokens, the one it names. */
export function tenantOf(request: FastifyRequest, requested?: string): string {
  if (!request.caller) return requested ?? DEFAULT_TENANT;
  if (requested !== undefined && requested !== request.caller.tenant) {
    throw new HttpError(403, ApiErrorType.Forbidden, `this token may not act for tenant "${requested}"`);
  }
  return request.caller.tenant;
}

/**
 * Who decides. With tokens: the operator named in the token, never one named in the body, so an app's token cannot
 * approve by claiming a name. Without tokens (a loopback-only server): the operator the body names.
 */
export function operatorOf(request: FastifyRequest, named?: string): string {
  const caller = request.caller;
  if (!caller) {
    if (!named) throw new HttpError(400, ErrorType.InvalidInput, 'body.operator: required on a server without tokens');
    return named;
  }
  if (!caller.operator)
    throw new HttpError(
      403,
      ApiErrorType.Forbidden,
      "this is an app's token: deciding approvals needs an operator's token (ragline token create --operator <name>)",
    );
  if (named !== undefined && named !== caller.operator)
    throw new HttpError(403, ApiErrorType.Forbidden, `this token acts as operator ${caller.operator}, not ${named}`);
  return caller.operator;
}
