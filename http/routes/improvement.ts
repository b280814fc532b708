import { WorkflowNotFoundError } from '@temporalio/client';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorType } from '../../lib/errors.js';
import { MAX_REASON_CHARS, type ImprovementStatus, type ParamProposal } from '../../contracts/improvement.js';
import { operatorOf } from '../auth.js';
import type { RouteContext, TypedApp } from '../context.js';
import { ApiErrorType, errors, HttpError } from '../errors.js';
import { Tenant } from '../schemas.js';

const ParamsSchema = z.object({
  topK: z.number(),
  bm25K1: z.number(),
  bm25B: z.number(),
  titleWeight: z.number(),
  semanticThreshold: z.number(),
  promptChunks: z.number(),
  fusionWeight: z.number().optional(),
  rrfK: z.number().optional(),
});

// Loose for the same reason as QueryResult: fields the workflow gains later reach operators without an API release.
const Proposal = z
  .looseObject({
    id: z.string(),
    createdAt: z.string(),
    expiresAt: z.string(),
    status: z.enum(['pending', 'approved', 'rejected', 'expired']),
    fromVersion: z.int(),
    from: ParamsSchema,
    params: ParamsSchema,
    changes: z.string().describe('`name a→b, …`'),
    effect: z.object({
      metric: z.string(),
      before: z.number(),
      after: z.number(),
      noise: z.number().describe('Two standard errors of the mean per-question difference'),
      questions: z.int(),
      evalSet: z.string(),
    }),
    decidedBy: z.string().optional(),
    decidedAt: z.string().optional(),
    decisionReason: z.string().optional(),
    appliedVersion: z.int().optional(),
  })
  .meta({ id: 'Proposal' });

const Decision = z
  .strictObject({
    reason: z.string().trim().min(1).max(MAX_REASON_CHARS).describe('Why; written to the audit log'),
    operator: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .describe("Who decides; only on a server without tokens: with tokens the operator is the token's"),
    tenant: Tenant.optional().describe("Must be the token's tenant when given"),
  })
  .meta({ id: 'Decision' });

/** A proposal as the response schema sees it: its listed fields, and any later ones passed through. */
const asBody = (proposal: ParamProposal) => proposal as ParamProposal & Record<string, unknown>;

/**
 * A tenant's approval requests from its improvement loop: list, approve, reject. Deciding needs an operator's token;
 * the workflow's allowlist has the last word.
 */
export function approvalRoutes(app: TypedApp, { ragline, tenantOf }: RouteContext): void {
  const api = app.withTypeProvider<ZodTypeProvider>();
  const improvement = ragline.improvement;

  const improvementStatus = async (tenant: string): Promise<ImprovementStatus> => {
    const notFound = () => new HttpError(404, ErrorType.NotFound, `no improvement workflow runs for tenant ${tenant}`);
    let status: ImprovementStatus;
    try {
      status = await improvement.status(tenant);
    } catch (error) {
      if (error instanceof WorkflowNotFoundError || (error as { type?: string }).type === ErrorType.NotFound)
        throw notFound();
      throw error;
    }
    // Checked as well as the id: another tenant's proposals are never shown.
    if (status.tenant !== tenant) throw notFound();
    return status;
  };

  api.get(
    '/v1/approvals',
    {
      config: { scope: 'operator' },
      schema: {
        summary: "Parameter changes of the caller's tenant waiting for an operator (all proposals with all=true)",
        querystring: z.strictObject({ all: z.stringbool().optional(), tenant: Tenant.optional() }),
        response: {
          200: z.object({ tenant: z.string(), approvers: z.array(z.string()), proposals: z.array(Proposal) }),
          ...errors(400, 401, 403, 404, 429, 500, 503),
        },
      },
    },
    async (request) => {
      const tenant = tenantOf(request, request.query.tenant);
      const status = await improvementStatus(tenant);
      return {
        tenant,
        approvers: status.settings.approvers,
        proposals: (request.query.all ? status.proposals : status.pending).map(asBody),
      };
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    api.post(
      `/v1/approvals/:id/${decision}`,
      {
        config: { scope: 'operator' },
        schema: {
          summary: `${decision === 'approve' ? 'Approve' : 'Reject'} a proposal: operator tokens only, on the workflow's approvers allowlist`,
          description:
            "An Update: the verdict comes back at once and a refused decision changes nothing. 403 for an app's " +
            'token or an operator not on the allowlist, 404 for an unknown proposal, 409 for one already decided or expired.',
          params: z.object({ id: z.string().min(1).max(100) }),
          body: Decision,
          response: { 200: Proposal, ...errors(400, 401, 403, 404, 409, 413, 415, 429, 500, 503) },
        },
      },
      async (request) => {
        const tenant = tenantOf(request, request.body.tenant);
        const operator = operatorOf(request, request.body.operator);
        const status = await improvementStatus(tenant);
        // Checked here first so each refusal gets its own status code; the workflow's validator re-checks
        // everything, so a decision racing another one is still refused (as a 409).
        refusal(status, request.params.id, operator);
        const decide = decision === 'approve' ? improvement.approve : improvement.reject;
        try {
          return asBody(await decide.call(improvement, tenant, request.params.id, operator, request.body.reason));
        } catch (error) {
          if ((error as { type?: string }).type === ErrorType.InvalidInput)
            throw new HttpError(409, ApiErrorType.Conflict, (error as Error).message);
          throw error;
        }
      },
    );
  }
}

/** The first reason the workflow would refuse this decision, as the HTTP error that says it best. */
function refusal(status: ImprovementStatus, proposalId: string, operator: string): void {
  if (!status.settings.approvers.includes(operator))
    throw new HttpError(
      403,
      ApiErrorType.Forbidden,
      `operator ${operator} is not on the approvers allowlist of tenant ${status.tenant} (RAGLINE_APPROVERS)`,
    );
  const proposal = status.proposals.find((p) => p.id === proposalId);
  if (!proposal) throw new HttpError(404, ErrorType.NotFound, `unknown proposal ${proposalId}`);
  if (proposal.status === 'expired' || (proposal.status === 'pending' && Date.now() >= Date.parse(proposal.expiresAt)))
    throw new HttpError(409, ApiErrorType.Conflict, `proposal ${proposalId} expired at ${proposal.expiresAt}`);
  if (proposal.status !== 'pending')
    throw new HttpError(409, ApiErrorType.Conflict, `proposal ${proposalId} was already ${proposal.status}`);
}
