import type { FastifyInstance } from 'fastify';

/** Liveness for load balancers and orchestrators: public, outside the rate limit, and not in the OpenAPI document. */
export function healthRoutes(app: FastifyInstance): void {
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ ok: true }));
}
