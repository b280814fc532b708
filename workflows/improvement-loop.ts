// Over 400 lines: one class holds the loop's state and every handler that changes it, so each rule reads in one place.
import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import type { AuditEntry } from '../lib/improve/param-store.js';
import { describeChanges, isSmallChange, paramsProblem, SUPERSEDED_REFUSAL } from '../lib/improve/params.js';
import {
  DEFAULT_IMPROVEMENT_SETTINGS,
  EVAL_PROPOSED_LIMIT,
  IMPROVEMENT_HISTORY_LIMIT,
  LOOP_ACTOR,
  approveProposalUpdate,
  decideProposalSignal,
  decisionProblem,
  getImprovementStateQuery,
  getImprovementStatusQuery,
  operatorProblem,
  rejectProposalUpdate,
  rollbackParamsUpdate,
  updateApproversUpdate,
  approversProblem,
  APPROVER_CHANGES_LIMIT,
  type ApproverChange,
  type UpdateApproversInput,
  runImprovementNowSignal,
  setParamsUpdate,
  type CycleSummary,
  type DecideProposalInput,
  type DecideProposalSignalInput,
  type EvalProposalSummary,
  type ImprovementInput,
  type ImprovementState,
  type ImprovementStatus,
  type ParamProposal,
  type RollbackParamsInput,
  type SetParamsInput,
} from '../contracts/improvement.js';

type Activities = ReturnType<typeof createActivities>;

// Reading the log and writing a version are quick; retried a few times, then the cycle reports the failure.
const quick = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: { maximumAttempts: 5, initialInterval: '500ms', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});
// A shadow evaluation runs every candidate over the whole evaluation set: minutes on a large set, so it heartbeats.
const evaluation = proxyActivities<Activities>({
  startToCloseTimeout: '30m',
  heartbeatTimeout: '2m',
  retry: { maximumAttempts: 3, initialInterval: '5s', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

const DEFAULT_MAX_CYCLES_PER_RUN = 50;

/**
 * The improvement loop's state and its message handlers, after Temporal's `safe-message-handlers` sample: what each
 * decision, parameter change and rollback is allowed to do, and what it refuses, is read here; `improvementWorkflow`
 * only hands off to it. `state` is the one plain object continue-as-new carries.
 */
export class ImprovementLoop {
  readonly state: ImprovementState;
  private readonly tenant: string;
  private runNow = false;
  /** Proposals whose approval is being written: a second decision on one waits for the outcome, refused. */
  private readonly applying = new Set<string>();

  constructor(private readonly input: ImprovementInput) {
    this.tenant = input.tenant;
    this.state = input.state ?? {
      settings: { ...DEFAULT_IMPROVEMENT_SETTINGS, ...input.settings },
      cycles: 0,
      continuedAsNew: 0,
      nextProposal: 1,
      proposals: [],
      history: [],
    };
  }

  /** Decisions come as Updates (the operator learns at once whether it was taken) or as a signal that logs a refusal. */
  registerHandlers(): void {
    setHandler(runImprovementNowSignal, () => {
      this.runNow = true;
    });
    setHandler(getImprovementStatusQuery, () => this.status());
    setHandler(getImprovementStateQuery, () => this.state);
    setHandler(approveProposalUpdate, (request) => this.decide('approve', request), {
      validator: (request) => {
        refuse(decisionProblem(this.state, request, Date.now()));
        refuse(this.applyingProblem(request.proposalId));
        refuse(this.staleProblem(request.proposalId));
      },
    });
    setHandler(rejectProposalUpdate, (request) => this.decide('reject', request), {
      validator: (request) => {
        refuse(decisionProblem(this.state, request, Date.now()));
        refuse(this.applyingProblem(request.proposalId));
      },
    });
    setHandler(decideProposalSignal, (request) => this.decideBySignal(request));
    setHandler(setParamsUpdate, (request) => this.setParams(request), {
      validator: (request) => {
        refuse(operatorProblem(request, this.state.settings.approvers));
        if (!request.params || Object.keys(request.params).length === 0) refuse('no parameter to set');
        refuse(paramsProblem(request.params as Record<string, unknown>));
      },
    });
    setHandler(updateApproversUpdate, (request) => this.updateApprovers(request), {
      validator: (request) => refuse(approversProblem(request)),
    });
    setHandler(rollbackParamsUpdate, (request) => this.rollback(request), {
      validator: (request) => refuse(operatorProblem(request, this.state.settings.approvers)),
    });
  }

  /**
   * Re-arms the expiry of pending proposals, reads the current parameters on a first start, then runs a cycle every
   * interval (or on the run-now signal) and returns when this run's history should be handed over.
   */
  async runCycles(): Promise<void> {
    const state = this.state;
    for (const proposal of state.proposals) if (proposal.status === 'pending') this.armExpiry(proposal);
    if (state.current === undefined)
      state.current = (await quick.getParams({ tenant: this.tenant, history: 0 })).current;
    this.publish();

    let cyclesThisRun = 0;
    for (;;) {
      await condition(() => this.runNow, state.settings.intervalMs);
      this.runNow = false;
      await this.cycle();
      cyclesThisRun++;
      if (
        workflowInfo().continueAsNewSuggested ||
        cyclesThisRun >= (this.input.maxCyclesPerRun ?? DEFAULT_MAX_CYCLES_PER_RUN)
      ) {
        return;
      }
    }
  }

  /** The state for the next run, once every handler in flight (an approval writing a version) has finished. */
  async handOver(): Promise<ImprovementState> {
    await condition(allHandlersFinished);
    this.state.continuedAsNew++;
    return this.state;
  }

  private async decide(decision: 'approve' | 'reject', request: DecideProposalInput): Promise<ParamProposal> {
    const proposal = this.state.proposals.find((p) => p.id === request.proposalId)!;
    const decidedAt = new Date(Date.now()).toISOString();
    const record = (status: 'approved' | 'rejected') => {
      proposal.status = status;
      proposal.decidedBy = request.operator;
      proposal.decidedAt = decidedAt;
      proposal.decisionReason = request.reason;
    };
    if (decision === 'reject') {
      record('rejected');
      this.publish();
      return proposal;
    }
    // Approved means applied: the proposal is marked only once the new version is written. Until then it stays
    // pending, and a second decision while this one is being applied is refused (see applying). Histories from before
    // this rule marked it first, and replay keeps their order.
    const afterApply = this.approveAfterApply();
    if (!afterApply) record('approved');
    this.applying.add(proposal.id);
    try {
      const entry = await quick.applyParams({
        tenant: this.tenant,
        params: proposal.params,
        actor: request.operator,
        action: 'apply',
        reason: request.reason,
        effect: proposal.effect,
        proposalId: proposal.id,
        changeId: this.changeId(proposal.id),
        expectedVersion: proposal.fromVersion,
      });
      record('approved');
      delete proposal.applyError;
      proposal.appliedVersion = entry.toVersion;
      this.remember(entry);
    } catch (failure) {
      const cause = failure instanceof ActivityFailure ? failure.cause : failure;
      proposal.applyError = cause instanceof Error ? cause.message : String(cause);
      throw failure;
    } finally {
      this.applying.delete(proposal.id);
      // The expiry timer leaves a proposal alone while it is being applied; one that failed past its expiry ends here.
      if (afterApply && proposal.status === 'pending' && Date.now() >= Date.parse(proposal.expiresAt)) {
        proposal.status = 'expired';
        this.publish();
      }
    }
    this.publish();
    return proposal;
  }

  /**
   * A signal has no caller to refuse: the rules of the Updates apply, and a refused decision is logged and dropped. So is
   * one that cannot be carried out (a malformed payload, a failed write): a signal handler that throws fails the workflow.
   */
  private async decideBySignal(request: DecideProposalSignalInput): Promise<void> {
    try {
      const problem =
        decisionProblem(this.state, request, Date.now()) ??
        (this.approveAfterApply() ? this.applyingProblem(request.proposalId) : undefined) ??
        (request.decision === 'approve' ? this.staleProblem(request.proposalId) : undefined);
      if (problem) {
        log.warn('proposal decision ignored', { proposalId: request.proposalId, operator: request.operator, problem });
        return;
      }
      await this.decide(request.decision === 'approve' ? 'approve' : 'reject', request);
    } catch (failure) {
      const cause = failure instanceof ActivityFailure ? failure.cause : failure;
      log.warn('proposal decision failed', {
        proposalId: request?.proposalId,
        operator: request?.operator,
        problem: cause instanceof Error ? cause.message : String(cause),
      });
    }
  }

  private async setParams(request: SetParamsInput): Promise<AuditEntry> {
    const entry = await quick.applyParams({
      tenant: this.tenant,
      params: request.params,
      actor: request.operator,
      action: 'apply',
      reason: request.reason,
      changeId: this.changeId(`set-${this.state.nextProposal++}`),
    });
    this.remember(entry);
    this.publish();
    return entry;
  }

  private async rollback(request: RollbackParamsInput): Promise<AuditEntry> {
    const entry = await quick.rollbackParams({
      tenant: this.tenant,
      actor: request.operator,
      reason: request.reason,
      changeId: this.changeId(`rollback-${this.state.nextProposal++}`),
    });
    this.remember(entry);
    this.publish();
    return entry;
  }

  /** A new allowlist takes effect for the next decision; pending proposals stay pending. */
  private updateApprovers(request: UpdateApproversInput): ApproverChange {
    const state = this.state;
    const change: ApproverChange = {
      at: new Date(Date.now()).toISOString(),
      actor: request.actor,
      reason: request.reason,
      from: state.settings.approvers,
      to: [...request.approvers],
    };
    state.settings = { ...state.settings, approvers: change.to };
    state.approverChanges = [...(state.approverChanges ?? []), change].slice(-APPROVER_CHANGES_LIMIT);
    this.publish();
    return change;
  }

  /** Whether this run follows "approve means applied" (#24); replayed older histories marked the proposal first. */
  private approveAfterApply(): boolean {
    return patched('approve-after-apply');
  }

  private applyingProblem(proposalId: string): string | undefined {
    return this.applying.has(proposalId) ? `proposal ${proposalId} is being applied` : undefined;
  }

  // A change measured against another version than the current one was never measured against what it replaces.
  private staleProblem(proposalId: string): string | undefined {
    const proposal = this.state.proposals.find((p) => p.id === proposalId);
    const version = this.state.current?.version ?? 0;
    return proposal && proposal.fromVersion !== version
      ? `proposal ${proposalId} was measured against version ${proposal.fromVersion}, but version ${version} is current`
      : undefined;
  }

  private armExpiry(proposal: ParamProposal): void {
    void (async () => {
      await sleep(Math.max(Date.parse(proposal.expiresAt) - Date.now(), 1));
      if (proposal.status === 'pending' && !this.applying.has(proposal.id)) {
        proposal.status = 'expired';
        this.publish();
      }
    })();
  }

  /**
   * The idempotency key of a parameter change: unique across runs, not only within one. Counters restart at 1 when
   * the loop is started again (after a terminate or a failure) and rewind when a run is reset, and an id of an
   * earlier run would find that run's audit entry and write nothing. The run id tells them apart: a reset run gets a
   * new one, and no change spans runs (continue-as-new waits for every handler), so a retried activity still finds
   * its own entry.
   */
  private changeId(what: string): string {
    const info = workflowInfo();
    return `${info.workflowId}:${info.runId}:${what}`;
  }

  private remember(entry: AuditEntry): void {
    this.state.current = { version: entry.toVersion, params: entry.params };
  }

  /** Well-rated questions go to the evaluation workflow as a proposal; a failure there does not fail the cycle. */
  private async proposeEvalItems(
    n: number,
    proposals: NonNullable<ImprovementState['lastAnalysis']>['evalSetProposals'],
  ): Promise<EvalProposalSummary> {
    const state = this.state;
    try {
      const sent = await quick.proposeEvalItems({
        tenant: this.tenant,
        evalSet: state.settings.evalSet,
        proposals,
        alreadyProposed: state.evalProposed ?? [],
        updateId: this.changeId(`cycle-${n}-eval-items`),
      });
      // A refused question is remembered like a proposed one, so it is not tried again every cycle.
      const refused = sent.refusedIds ?? [];
      state.evalProposed = [...(state.evalProposed ?? []), ...sent.itemIds, ...refused].slice(-EVAL_PROPOSED_LIMIT);
      return {
        outcome: sent.outcome,
        workflowId: sent.workflowId,
        proposalId: sent.proposalId,
        questions: sent.itemIds.length,
        skipped: sent.skipped,
        ...(refused.length > 0 ? { refused: refused.length } : {}),
      };
    } catch (failure) {
      const cause = failure instanceof ActivityFailure ? failure.cause : failure;
      return {
        outcome: 'failed',
        questions: 0,
        skipped: proposals.length,
        detail: cause instanceof Error ? cause.message : String(cause),
      };
    }
  }

  private async cycle(): Promise<void> {
    const { state, tenant } = this;
    // Counted once the cycle is over, so a reader that sees the count also sees the cycle's summary.
    const n = state.cycles + 1;
    const summary: CycleSummary = {
      cycle: n,
      at: new Date(Date.now()).toISOString(),
      volume: 0,
      meanQuality: 0,
      outcome: 'no-gain',
      version: state.current?.version ?? 0,
    };
    try {
      const analysis = await quick.analyzeQueryLog({ tenant, windowMs: state.settings.windowMs });
      state.lastAnalysis = analysis;
      summary.volume = analysis.volume;
      summary.meanQuality = analysis.meanQuality;
      // Added after histories were captured: a replayed cycle that never proposed must not start to.
      if (analysis.evalSetProposals.length > 0 && patched('improvement-eval-proposals')) {
        summary.evalProposal = await this.proposeEvalItems(n, analysis.evalSetProposals);
      }
      if (state.proposals.some((p) => p.status === 'pending')) {
        summary.outcome = 'awaiting-approval';
      } else {
        const before = state.current?.version;
        const shadow = await evaluation.shadowEvaluateParams({ tenant, evalSet: state.settings.evalSet });
        summary.candidates = shadow.candidates;
        // An operator changed the parameters while the shadow evaluation ran (it takes minutes): what it measured is
        // no longer what a change would replace, so nothing is applied or proposed, and the operator's version stays.
        // (Added after histories were captured: a replayed cycle that applied over such a change still does.)
        const superseded =
          before !== undefined && state.current?.version !== before && patched('improvement-superseded');
        if (superseded) {
          summary.outcome = 'superseded';
          summary.detail = `parameters changed to version ${state.current?.version ?? 0} during the shadow evaluation`;
        } else state.current = shadow.current;
        if (shadow.best && !superseded) {
          const { params, effect } = shadow.best;
          summary.changes = describeChanges(shadow.current.params, params);
          summary.effect = effect;
          if (isSmallChange(shadow.current.params, params, state.settings.autoApplyScale)) {
            const entry = await quick.applyParams({
              tenant,
              params,
              actor: LOOP_ACTOR,
              action: 'auto-apply',
              reason: `cycle ${n}: nDCG@10 ${effect.before} → ${effect.after}, above noise ±${effect.noise}`,
              effect,
              changeId: this.changeId(`cycle-${n}`),
              expectedVersion: shadow.current.version,
            });
            this.remember(entry);
            summary.outcome = 'auto-applied';
          } else {
            const proposal: ParamProposal = {
              id: `p${state.nextProposal++}`,
              createdAt: new Date(Date.now()).toISOString(),
              expiresAt: new Date(Date.now() + state.settings.approvalTtlMs).toISOString(),
              status: 'pending',
              fromVersion: shadow.current.version,
              from: shadow.current.params,
              params,
              changes: summary.changes,
              effect,
            };
            state.proposals.push(proposal);
            this.armExpiry(proposal);
            summary.outcome = 'proposed';
            summary.detail = proposal.id;
          }
        }
      }
    } catch (failure) {
      const cause = failure instanceof ActivityFailure ? failure.cause : failure;
      const type = cause instanceof ApplicationFailure ? cause.type : undefined;
      const message = cause instanceof Error ? cause.message : String(cause);
      summary.outcome =
        type !== ErrorType.InvalidInput
          ? 'failed'
          : message.endsWith(SUPERSEDED_REFUSAL)
            ? 'superseded'
            : 'no-eval-set';
      summary.detail = cause instanceof Error ? cause.message : String(cause);
    }
    summary.version = state.current?.version ?? 0;
    state.history = [...state.history, summary].slice(-IMPROVEMENT_HISTORY_LIMIT);
    state.cycles = n;
    // Decided proposals are kept for the record, within the same bound; pending ones always stay.
    const decided = state.proposals.filter((p) => p.status !== 'pending');
    if (decided.length > IMPROVEMENT_HISTORY_LIMIT) {
      const drop = new Set(decided.slice(0, decided.length - IMPROVEMENT_HISTORY_LIMIT));
      state.proposals = state.proposals.filter((p) => !drop.has(p));
    }
    this.publish();
  }

  private status(): ImprovementStatus {
    const state = this.state;
    return {
      tenant: this.tenant,
      settings: state.settings,
      cycles: state.cycles,
      continuedAsNew: state.continuedAsNew,
      current: state.current,
      pending: state.proposals.filter((p) => p.status === 'pending'),
      proposals: state.proposals,
      history: state.history,
      lastAnalysis: state.lastAnalysis,
      ...(state.approverChanges ? { approverChanges: state.approverChanges } : {}),
    };
  }

  /** What an operator sees in the Temporal UI without running a query: the memo and the current details. */
  private publish(): void {
    const state = this.state;
    const pending = state.proposals.filter((p) => p.status === 'pending');
    upsertMemo({
      paramsVersion: state.current?.version ?? 0,
      pendingApprovals: pending.map((p) => `${p.id}: ${p.changes} (nDCG@10 ${p.effect.before}→${p.effect.after})`),
    });
    const lines = [
      `**Parameters** version ${state.current?.version ?? 0}, ${state.cycles} cycles`,
      ...pending.map(
        (p) =>
          `- approval needed **${p.id}**: ${p.changes}, nDCG@10 ${p.effect.before} → ${p.effect.after} ` +
          `(noise ±${p.effect.noise}), expires ${p.expiresAt}; \`ragline approvals approve ${p.id} --reason …\``,
      ),
    ];
    setCurrentDetails(lines.join('\n'));
  }
}

/** An Update validator's refusal: the Update fails for its caller and never reaches the history. */
function refuse(problem: string | undefined): void {
  if (problem) throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
}
