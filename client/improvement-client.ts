import { randomBytes } from 'node:crypto';
import { WorkflowFailedError, WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { Config } from '../lib/config.js';
import { ErrorType, InvalidInputError, RaglineError } from '../lib/errors.js';
import type { AuditEntry } from '../lib/improve/param-store.js';
import { paramsProblem, type RetrievalParams } from '../lib/improve/params.js';
import { feedbackProblem } from '../lib/improve/feedback.js';
import type { RecordFeedbackInput, RecordFeedbackResult } from '../contracts/feedback.js';
import {
  approveProposalUpdate,
  decideProposalSignal,
  getImprovementStateQuery,
  getImprovementStatusQuery,
  improvementWorkflowId,
  legacyImprovementWorkflowId,
  MAX_REASON_CHARS,
  rejectProposalUpdate,
  rollbackParamsUpdate,
  updateApproversUpdate,
  runImprovementNowSignal,
  setParamsUpdate,
  type ImprovementSettings,
  type ImprovementStatus,
  type ParamProposal,
} from '../contracts/improvement.js';
import { findLegacyLoop, retireLegacyLoop } from './legacy-loops.js';

/** The improvement settings the configuration asks for. */
export function improvementSettings(config: Config): ImprovementSettings {
  return {
    intervalMs: Math.max(config.RAGLINE_IMPROVE_INTERVAL_SECONDS, 1) * 1000,
    windowMs: config.RAGLINE_IMPROVE_WINDOW_HOURS * 3_600_000,
    approvalTtlMs: config.RAGLINE_APPROVAL_TTL_SECONDS * 1000,
    evalSet: config.RAGLINE_EVAL_SET,
    approvers: config.RAGLINE_APPROVERS,
    autoApplyScale: config.RAGLINE_IMPROVE_AUTO_APPLY ? 1 : 0,
  };
}

/**
 * What operators and users do with the improvement loop: start it, nudge it, read it, decide its proposals, set or
 * roll back parameters, and rate answers. Refusals come back as InvalidInput/NotFound RaglineErrors saying why.
 */
export class ImprovementClient {
  /**
   * @param approvers the configured allowlist (RAGLINE_APPROVERS). When given, every decision first brings the
   *   running loop's allowlist in line with it (an audited Update), so an operator removed from the configuration is
   *   refused from the next decision on, whichever tenant's loop it is and whether or not it was restarted.
   */
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
    private readonly approvers?: readonly string[],
  ) {}

  /**
   * Starts the tenant's improvement workflow, or leaves the running one alone: idempotent. One thing of a running
   * loop follows the settings: its approvers allowlist, replaced (and audited) when it differs, so removing an
   * operator from RAGLINE_APPROVERS revokes them at the next `ragline up` or `improve start`.
   */
  async ensure(tenant: string, settings: Partial<ImprovementSettings>): Promise<string> {
    // A loop of this tenant still running under the id of before #24 hands its state over and ends.
    const legacy = await findLegacyLoop(
      this.client,
      legacyImprovementWorkflowId(tenant),
      { status: getImprovementStatusQuery, state: getImprovementStateQuery },
      (status) => status.tenant === tenant,
    );
    const handle = await this.client.workflow.start('improvementWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: improvementWorkflowId(tenant),
      args: [{ tenant, settings, ...(legacy ? { state: legacy.state } : {}) }],
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    if (legacy) await retireLegacyLoop(this.client, legacy, handle.workflowId);
    if (settings.approvers !== undefined) await this.syncApprovers(tenant, settings.approvers);
    return handle.workflowId;
  }

  /** Replaces the running loop's approvers allowlist (audited) when it differs from `wanted`. */
  private async syncApprovers(tenant: string, wanted: readonly string[]): Promise<void> {
    const running = (await this.status(tenant)).settings.approvers;
    const same = running.length === wanted.length && wanted.every((name) => running.includes(name));
    if (same) return;
    await this.call(tenant, (h) =>
      h.executeUpdate(updateApproversUpdate, {
        args: [
          { approvers: [...wanted], actor: 'configuration', reason: 'RAGLINE_APPROVERS differs from the running loop' },
        ],
      }),
    );
  }

  /** The configured allowlist, in force before a decision is sent. */
  private async beforeDecision(tenant: string): Promise<void> {
    if (this.approvers !== undefined) await this.syncApprovers(tenant, this.approvers);
  }

  async runNow(tenant: string): Promise<void> {
    await this.call(tenant, (handle) => handle.signal(runImprovementNowSignal));
  }

  async status(tenant: string): Promise<ImprovementStatus> {
    return this.call(tenant, (handle) => handle.query(getImprovementStatusQuery));
  }

  async approve(tenant: string, proposalId: string, operator: string, reason: string): Promise<ParamProposal> {
    await this.beforeDecision(tenant);
    return this.call(tenant, (handle) =>
      handle.executeUpdate(approveProposalUpdate, { args: [{ proposalId, operator, reason }] }),
    );
  }

  async reject(tenant: string, proposalId: string, operator: string, reason: string): Promise<ParamProposal> {
    await this.beforeDecision(tenant);
    return this.call(tenant, (handle) =>
      handle.executeUpdate(rejectProposalUpdate, { args: [{ proposalId, operator, reason }] }),
    );
  }

  /** Fire-and-forget decision: returns once the signal is delivered; an invalid one is ignored by the workflow. */
  async decideAsync(
    tenant: string,
    decision: 'approve' | 'reject',
    proposalId: string,
    operator: string,
    reason: string,
  ): Promise<void> {
    await this.beforeDecision(tenant);
    await this.call(tenant, (handle) =>
      handle.signal(decideProposalSignal, { decision, proposalId, operator, reason }),
    );
  }

  async setParams(
    tenant: string,
    params: Partial<RetrievalParams>,
    operator: string,
    reason: string,
  ): Promise<AuditEntry> {
    // Checked here too, so a bad value is reported even when no worker is up.
    const problem = paramsProblem(params as Record<string, unknown>);
    if (problem) throw new InvalidInputError(problem);
    if (reason.length > MAX_REASON_CHARS)
      throw new InvalidInputError(`reason longer than ${MAX_REASON_CHARS} characters`);
    await this.beforeDecision(tenant);
    return this.call(tenant, (handle) =>
      handle.executeUpdate(setParamsUpdate, { args: [{ operator, reason, params }] }),
    );
  }

  async rollback(tenant: string, operator: string, reason: string): Promise<AuditEntry> {
    await this.beforeDecision(tenant);
    return this.call(tenant, (handle) => handle.executeUpdate(rollbackParamsUpdate, { args: [{ operator, reason }] }));
  }

  /** Rates an answer; refused for an unknown query id (NotFound) or a bad score (InvalidInput). */
  async feedback(input: RecordFeedbackInput): Promise<RecordFeedbackResult> {
    const problem = feedbackProblem(input);
    if (problem) throw new InvalidInputError(problem);
    try {
      return (await this.client.workflow.execute('recordFeedbackWorkflow', {
        taskQueue: this.taskQueue,
        workflowId: `feedback-${input.queryId.slice(0, 120)}-${randomBytes(3).toString('hex')}`,
        args: [input],
      })) as RecordFeedbackResult;
    } catch (error) {
      throw asRaglineError(error);
    }
  }

  private async call<T>(
    tenant: string,
    run: (handle: ReturnType<Client['workflow']['getHandle']>) => Promise<T>,
  ): Promise<T> {
    try {
      return await run(this.client.workflow.getHandle(improvementWorkflowId(tenant)));
    } catch (error) {
      if (error instanceof WorkflowNotFoundError)
        throw new RaglineError(
          ErrorType.NotFound,
          `no improvement workflow runs for tenant ${tenant}; start it with \`ragline improve start\``,
        );
      throw asRaglineError(error);
    }
  }
}

function asRaglineError(error: unknown): unknown {
  const cause =
    error instanceof WorkflowUpdateFailedError || error instanceof WorkflowFailedError
      ? error.cause instanceof ApplicationFailure
        ? error.cause
        : (error.cause?.cause ?? error.cause)
      : undefined;
  if (cause instanceof ApplicationFailure) {
    return new RaglineError((cause.type ?? ErrorType.Unavailable) as ErrorType, cause.message);
  }
  return error;
}
