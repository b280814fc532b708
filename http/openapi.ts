import fastifySwagger from '@fastify/swagger';
import type { FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';

/**
 * Collects the OpenAPI document from the routes' zod schemas, the same ones requests are validated against. Registered
 * before any route, so every route is in it.
 */
export async function registerOpenApi(app: FastifyInstance): Promise<void> {
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
}

/** Serves the document at `/openapi.json`, without a token. */
export function serveOpenApi(app: FastifyInstance): void {
  app.get('/openapi.json', { config: { public: true }, schema: { hide: true } }, async () => app.swagger());
}
