import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { RouteContext, TypedApp } from '../context.js';
import { errors } from '../errors.js';
import { Tenant } from '../schemas.js';

/**
 * A tenant's documents: deletion only. Ingestion is not offered on purpose: it reads paths on the worker's host, an
 * operator's action (`ragline ingest`).
 */
export function documentRoutes(app: TypedApp, { ragline, tenantOf }: RouteContext): void {
  app.withTypeProvider<ZodTypeProvider>().delete(
    '/v1/documents/:id',
    {
      config: { scope: 'ingest' },
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
    async (request) => ragline.deleteDocuments([request.params.id], tenantOf(request, request.query.tenant)),
  );
}
