import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { RaglineClient } from '../client/ragline-client.js';

export type TypedApp = FastifyInstance & { withTypeProvider: () => ReturnType<FastifyInstance['withTypeProvider']> };

/** What every route module is handed: the client its handlers act through, and the tenant binding of the tokens. */
export interface RouteContext {
  /** The tenant a request acts for; throws a 403 error when it asks for another than its token's. */
  tenantOf(request: FastifyRequest, requested?: string): string;
  /** The client the server was created with; its sub-clients (`evaluation`, `improvement`) serve the operator routes. */
  ragline: RaglineClient;
}

/** A route module: mounts its routes on the server with the server's auth, validation and error format. */
export type RouteMount = (app: TypedApp, context: RouteContext) => void;
