import { WorkflowNotFoundError } from '@temporalio/client';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorType } from '../../lib/errors.js';
import { loadEvalSet } from '../../lib/eval/dataset.js';
import type { RouteContext, TypedApp } from '../context.js';
import { ApiErrorType, errors, HttpError } from '../errors.js';
import { Tenant } from '../schemas.js';

export interface EvaluationRoutesOptions {
  /** Evaluation set whose continuous evaluation `/v1/evaluation` addresses by default (RAGLINE_EVAL_SET). */
  evalSet: string;
}

const EvaluationSummary = z
  .looseObject({
    tenant: z.string(),
    setName: z.string(),
    phase: z.string(),
    paused: z.boolean(),
    batches: z.int(),
    questions: z.int(),
    settings: z.object({ intervalMs: z.number(), batchSize: z.number() }),
    trend: z.number(),
    firing: z.array(z.string()),
    nextBatchAt: z.string().optional(),
    lastError: z.string().optional(),
  })
  .meta({ id: 'EvaluationStatus' });

const SetName = z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "1–100 letters, digits, '.', '_' or '-'");

/** A tenant's continuous evaluation: its status (last batch, baseline, trend, firing alerts) and a batch run now. */
export function evaluationRoutes(options: EvaluationRoutesOptions) {
  let defaultSet: Promise<string> | undefined;
  const setNameOf = (requested?: string) =>
    requested ? Promise.resolve(requested) : (defaultSet ??= loadEvalSet(options.evalSet).then((set) => set.name));

  return (app: TypedApp, { ragline, tenantOf }: RouteContext) => {
    const api = app.withTypeProvider<ZodTypeProvider>();
    const evaluation = ragline.evaluation;

    const evaluationOf = async (tenant: string, set?: string) => {
      const setName = await setNameOf(set);
      const notFound = () =>
        new HttpError(
          404,
          ErrorType.NotFound,
          `no evaluation of set ${setName} runs for tenant ${tenant}; start it with \`ragline eval start\``,
        );
      let status;
      try {
        status = await evaluation.status(tenant, setName);
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw notFound();
        throw error;
      }
      // The id names the tenant, and what is returned is checked too: another tenant's status is never shown.
      if (status.tenant !== tenant) throw notFound();
      return { setName, status };
    };

    const EvalQuery = z.strictObject({
      set: SetName.optional().describe('Evaluation set name (default: the server’s RAGLINE_EVAL_SET)'),
      tenant: Tenant.optional(),
    });

    api.get(
      '/v1/evaluation',
      {
        config: { scope: 'operator' },
        schema: {
          summary: "Status of the caller's tenant's continuous evaluation: last batch, baseline, trend, firing alerts",
          querystring: EvalQuery,
          response: { 200: EvaluationSummary, ...errors(400, 401, 403, 404, 429, 500, 503) },
        },
      },
      async (request) => {
        const { status } = await evaluationOf(tenantOf(request, request.query.tenant), request.query.set);
        return status as typeof status & Record<string, unknown>;
      },
    );

    api.post(
      '/v1/evaluation/run',
      {
        config: { scope: 'operator' },
        schema: {
          summary: "Run a batch of the caller's tenant's continuous evaluation now instead of at its next interval",
          querystring: EvalQuery,
          response: {
            202: z.object({ tenant: z.string(), setName: z.string(), batches: z.int().describe('Batches so far') }),
            ...errors(400, 401, 403, 404, 409, 429, 500, 503),
          },
        },
      },
      async (request, reply) => {
        const tenant = tenantOf(request, request.query.tenant);
        const { setName, status } = await evaluationOf(tenant, request.query.set);
        if (status.paused)
          throw new HttpError(
            409,
            ApiErrorType.Conflict,
            `the evaluation of set ${setName} is paused by an operator; resume it (ragline eval resume) before running a batch`,
          );
        await evaluation.runNow(tenant, setName);
        return reply.code(202).send({ tenant, setName, batches: status.batches });
      },
    );
  };
}
