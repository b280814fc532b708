import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { WorkflowUpdateFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, TypedSearchAttributes } from '@temporalio/common';
import { InvalidInputError } from '../lib/errors.js';
import type { AlertPolicy } from '../lib/eval/alerts.js';
import { loadEvalSet, type EvalSet } from '../lib/eval/dataset.js';
import { DEFAULT_TENANT } from '../contracts/query.js';
import {
  configureEvaluationUpdate,
  decideEvalProposalUpdate,
  evaluationWorkflowId,
  getEvalProgressQuery,
  getEvaluationStateQuery,
  getEvaluationStatusQuery,
  legacyEvaluationWorkflowId,
  pauseEvaluationSignal,
  proposeEvalItemsUpdate,
  resumeEvaluationSignal,
  runEvaluationNowSignal,
  type ConfigureEvaluationInput,
  type DecideEvalProposalInput,
  type EvalProgress,
  type EvalSettings,
  type EvaluateOnceResult,
  type EvaluationInput,
  type EvaluationStatus,
  type ProposeEvalItemsInput,
} from '../contracts/evaluation.js';
import { findLegacyLoop, retireLegacyLoop } from './legacy-loops.js';
import { tenantScopedId } from '../lib/tenant.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';

export interface StartEvaluationOptions {
  tenant?: string;
  /** Evaluation set path; resolved here, so the worker must see the same file system. */
  dataset: string;
  settings?: Partial<EvalSettings>;
  alertPolicy?: Partial<AlertPolicy>;
  k?: number;
  maxBatchesPerRun?: number;
}

export interface StartedEvaluation {
  workflowId: string;
  /** The run that was started, or the running one that was reused. */
  runId: string;
  /** False when an evaluation with this id was already running: it is reused, its settings unchanged. */
  started: boolean;
  set: Pick<EvalSet, 'name' | 'version' | 'problems'> & { items: number };
}

/** Starts, steers and reads evaluation workflows. */
export class EvaluationClient {
  constructor(
    readonly client: Client,
    readonly taskQueue: string,
  ) {}

  /**
   * Ensures the evaluation of a set runs for a tenant: idempotent (a running one is reused). The set is read here
   * first, so a missing or empty set is an `EvalSetError` and no workflow starts.
   */
  async start(options: StartEvaluationOptions): Promise<StartedEvaluation> {
    const tenant = options.tenant ?? DEFAULT_TENANT;
    const dataset = path.resolve(options.dataset);
    const set = await loadEvalSet(dataset);
    const workflowId = evaluationWorkflowId(tenant, set.name);
    const running = await this.client.workflow
      .getHandle(workflowId)
      .describe()
      .then((d) => d.status.name === 'RUNNING')
      .catch(() => false);
    // An evaluation of this tenant and set still running under the id of before #24 hands its state over and ends.
    const legacy = running
      ? undefined
      : await findLegacyLoop(
          this.client,
          legacyEvaluationWorkflowId(tenant, set.name),
          { status: getEvaluationStatusQuery, state: getEvaluationStateQuery },
          (status) => status.tenant === tenant && status.setName === set.name,
        );
    const input: EvaluationInput = {
      tenant,
      dataset,
      setName: set.name,
      settings: options.settings,
      alertPolicy: options.alertPolicy,
      k: options.k,
      maxBatchesPerRun: options.maxBatchesPerRun,
      ...(legacy ? { state: legacy.state } : {}),
    };
    const handle = await this.client.workflow.start('evaluationWorkflow', {
      taskQueue: this.taskQueue,
      workflowId,
      args: [input],
      workflowIdConflictPolicy: 'USE_EXISTING',
      typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
      staticSummary: `Continuous evaluation of ${set.name} (${set.items.length} questions) for tenant ${tenant}`,
    });
    if (legacy) await retireLegacyLoop(this.client, legacy, workflowId);
    return {
      workflowId,
      runId: handle.firstExecutionRunId,
      started: !running,
      set: { name: set.name, version: set.version, problems: set.problems, items: set.items.length },
    };
  }

  handle(tenant: string, setName: string): WorkflowHandle {
    return this.client.workflow.getHandle(evaluationWorkflowId(tenant, setName));
  }

  status(tenant: string, setName: string): Promise<EvaluationStatus> {
    return this.handle(tenant, setName).query(getEvaluationStatusQuery);
  }

  pause(tenant: string, setName: string): Promise<void> {
    return this.handle(tenant, setName).signal(pauseEvaluationSignal);
  }

  resume(tenant: string, setName: string): Promise<void> {
    return this.handle(tenant, setName).signal(resumeEvaluationSignal);
  }

  runNow(tenant: string, setName: string): Promise<void> {
    return this.handle(tenant, setName).signal(runEvaluationNowSignal);
  }

  /** Changes interval or batch size; a bad value is refused by the workflow's validator with the reason. */
  configure(tenant: string, setName: string, change: ConfigureEvaluationInput): Promise<EvalSettings> {
    return refused(this.handle(tenant, setName).executeUpdate(configureEvaluationUpdate, { args: [change] }));
  }

  /** Stores questions (e.g. from real traffic) as a pending proposal; nothing enters the set until a person accepts. */
  propose(tenant: string, setName: string, proposal: ProposeEvalItemsInput) {
    return refused(this.handle(tenant, setName).executeUpdate(proposeEvalItemsUpdate, { args: [proposal] }));
  }

  decide(tenant: string, setName: string, decision: DecideEvalProposalInput) {
    return refused(this.handle(tenant, setName).executeUpdate(decideEvalProposalUpdate, { args: [decision] }));
  }

  /** One pass over the set through the query workflows, reporting progress as it goes. */
  async runOnce(options: {
    dataset: string;
    tenant?: string;
    limit?: number;
    concurrency?: number;
    k?: number;
    onProgress?: (progress: EvalProgress) => void;
    pollMs?: number;
  }): Promise<EvaluateOnceResult> {
    const tenant = options.tenant ?? DEFAULT_TENANT;
    const dataset = path.resolve(options.dataset);
    const set = await loadEvalSet(dataset);
    const handle = await this.client.workflow.start('evaluateOnceWorkflow', {
      taskQueue: this.taskQueue,
      workflowId: tenantScopedId(
        'eval-run',
        tenant,
        set.name,
        `${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(2).toString('hex')}`,
      ),
      args: [{ tenant, dataset, limit: options.limit, concurrency: options.concurrency, k: options.k }],
      typedSearchAttributes: new TypedSearchAttributes([{ key: tenantSearchAttribute, value: tenant }]),
    });
    const result = handle.result() as Promise<EvaluateOnceResult>;
    if (options.onProgress) {
      const onProgress = options.onProgress;
      let done = false;
      void result.finally(() => (done = true)).catch(() => undefined);
      while (!done) {
        try {
          onProgress(await handle.query(getEvalProgressQuery));
        } catch {
          // The workflow may complete between the check and the query; the result reports the end state.
        }
        await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 200));
      }
    }
    return result;
  }
}

/** An Update its validator refused surfaces as an `InvalidInputError` carrying the validator's reason. */
async function refused<T>(update: Promise<T>): Promise<T> {
  try {
    return await update;
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError && error.cause instanceof ApplicationFailure) {
      throw new InvalidInputError(error.cause.message);
    }
    throw error;
  }
}
