import {
  ActivityFailure,
  ApplicationFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
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
import { describeChanges, isSmallChange, paramsProblem } from '../lib/improve/params.js';
import {
  DEFAULT_IMPROVEMENT_SETTINGS,
  EVAL_PROPOSED_LIMIT,
  IMPROVEMENT_HISTORY_LIMIT,
  LOOP_ACTOR,
  approveProposalUpdate,
  decideProposalSignal,
  decisionProblem,
  getImprovementStatusQuery,
  operatorProblem,
  rejectProposalUpdate,
  rollbackParamsUpdate,
  runImprovementNowSignal,
  setParamsUpdate,
  type CycleSummary,
  type DecideProposalInput,
  type EvalProposalSummary,
  type ImprovementInput,
  type ImprovementState,
  type ImprovementStatus,
  type ParamProposal,
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
 * Learns from the query log, measures parameter changes before proposing them, applies the small ones itself and
 * holds the large ones for a person. One per tenant (`improve-<tenant>`), long-running: a cycle every interval or on
 * the run-now signal, continue-as-new with its whole state.
 */
export async function improvementWorkflow(input: ImprovementInput): Promise<void> {
  const { tenant } = input;
  const state: ImprovementState = input.state ?? {
    settings: { ...DEFAULT_IMPROVEMENT_SETTINGS, ...input.settings },
    cycles: 0,
    continuedAsNew: 0,
    nextProposal: 1,
    proposals: [],
    history: [],
  };
  let runNow = false;
  const changeId = (what: string) => `${workflowInfo().workflowId}:${what}`;

  const status = (): ImprovementStatus => ({
    tenant,
    settings: state.settings,
    cycles: state.cycles,
    continuedAsNew: state.continuedAsNew,
    current: state.current,
    pending: state.proposals.filter((p) => p.status === 'pending'),
    proposals: state.proposals,
    history: state.history,
    lastAnalysis: state.lastAnalysis,
  });

  // What an operator sees in the Temporal UI without running a query: the memo and the current details.
  const publish = () => {
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
  };

  const remember = (entry: AuditEntry) => {
    state.current = { version: entry.toVersion, params: entry.params };
  };

  const armExpiry = (proposal: ParamProposal) => {
    void (async () => {
      await sleep(Math.max(Date.parse(proposal.expiresAt) - Date.now(), 1));
      if (proposal.status === 'pending') {
        proposal.status = 'expired';
        publish();
      }
    })();
  };

  const decide = async (decision: 'approve' | 'reject', request: DecideProposalInput): Promise<ParamProposal> => {
    const proposal = state.proposals.find((p) => p.id === request.proposalId)!;
    proposal.decidedBy = request.operator;
    proposal.decidedAt = new Date(Date.now()).toISOString();
    proposal.decisionReason = request.reason;
    if (decision === 'reject') {
      proposal.status = 'rejected';
      publish();
      return proposal;
    }
    proposal.status = 'approved';
    const entry = await quick.applyParams({
      tenant,
      params: proposal.params,
      actor: request.operator,
      action: 'apply',
      reason: request.reason,
      effect: proposal.effect,
      proposalId: proposal.id,
      changeId: changeId(proposal.id),
    });
    proposal.appliedVersion = entry.toVersion;
    remember(entry);
    publish();
    return proposal;
  };

  // A change measured against another version than the current one was never measured against what it replaces.
  const staleProblem = (proposalId: string) => {
    const proposal = state.proposals.find((p) => p.id === proposalId);
    const version = state.current?.version ?? 0;
    return proposal && proposal.fromVersion !== version
      ? `proposal ${proposalId} was measured against version ${proposal.fromVersion}, but version ${version} is current`
      : undefined;
  };

  const refuse = (problem: string | undefined) => {
    if (problem)
      throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
  };

  setHandler(runImprovementNowSignal, () => {
    runNow = true;
  });
  setHandler(getImprovementStatusQuery, status);
  setHandler(approveProposalUpdate, (request) => decide('approve', request), {
    validator: (request) => {
      refuse(decisionProblem(state, request, Date.now()));
      refuse(staleProblem(request.proposalId));
    },
  });
  setHandler(rejectProposalUpdate, (request) => decide('reject', request), {
    validator: (request) => refuse(decisionProblem(state, request, Date.now())),
  });
  setHandler(decideProposalSignal, async (request) => {
    const problem =
      decisionProblem(state, request, Date.now()) ??
      (request.decision === 'approve' ? staleProblem(request.proposalId) : undefined);
    if (problem) {
      log.warn('proposal decision ignored', { proposalId: request.proposalId, operator: request.operator, problem });
      return;
    }
    await decide(request.decision === 'approve' ? 'approve' : 'reject', request);
  });
  setHandler(
    setParamsUpdate,
    async (request) => {
      const entry = await quick.applyParams({
        tenant,
        params: request.params,
        actor: request.operator,
        action: 'apply',
        reason: request.reason,
        changeId: changeId(`set-${state.nextProposal++}`),
      });
      remember(entry);
      publish();
      return entry;
    },
    {
      validator: (request) => {
        refuse(operatorProblem(request, state.settings.approvers));
        if (!request.params || Object.keys(request.params).length === 0) refuse('no parameter to set');
        refuse(paramsProblem(request.params as Record<string, unknown>));
      },
    },
  );
  setHandler(
    rollbackParamsUpdate,
    async (request) => {
      const entry = await quick.rollbackParams({
        tenant,
        actor: request.operator,
        reason: request.reason,
        changeId: changeId(`rollback-${state.nextProposal++}`),
      });
      remember(entry);
      publish();
      return entry;
    },
    { validator: (request) => refuse(operatorProblem(request, state.settings.approvers)) },
  );

  for (const proposal of state.proposals) if (proposal.status === 'pending') armExpiry(proposal);
  if (state.current === undefined) state.current = (await quick.getParams({ tenant, history: 0 })).current;
  publish();

  let cyclesThisRun = 0;
  for (;;) {
    await condition(() => runNow, state.settings.intervalMs);
    runNow = false;
    await cycle();
    cyclesThisRun++;
    if (
      workflowInfo().continueAsNewSuggested ||
      cyclesThisRun >= (input.maxCyclesPerRun ?? DEFAULT_MAX_CYCLES_PER_RUN)
    ) {
      await condition(allHandlersFinished);
      state.continuedAsNew++;
      await continueAsNew<typeof improvementWorkflow>({ ...input, settings: undefined, state });
    }
  }

  /** Well-rated questions go to the evaluation workflow as a proposal; a failure there does not fail the cycle. */
  async function proposeEvalItems(
    n: number,
    proposals: NonNullable<ImprovementState['lastAnalysis']>['evalSetProposals'],
  ): Promise<EvalProposalSummary> {
    try {
      const sent = await quick.proposeEvalItems({
        tenant,
        evalSet: state.settings.evalSet,
        proposals,
        alreadyProposed: state.evalProposed ?? [],
        updateId: changeId(`cycle-${n}-eval-items`),
      });
      state.evalProposed = [...(state.evalProposed ?? []), ...sent.itemIds].slice(-EVAL_PROPOSED_LIMIT);
      return {
        outcome: sent.outcome,
        workflowId: sent.workflowId,
        proposalId: sent.proposalId,
        questions: sent.itemIds.length,
        skipped: sent.skipped,
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

  async function cycle(): Promise<void> {
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
        summary.evalProposal = await proposeEvalItems(n, analysis.evalSetProposals);
      }
      if (state.proposals.some((p) => p.status === 'pending')) {
        summary.outcome = 'awaiting-approval';
      } else {
        const shadow = await evaluation.shadowEvaluateParams({ tenant, evalSet: state.settings.evalSet });
        state.current = shadow.current;
        summary.candidates = shadow.candidates;
        if (shadow.best) {
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
              changeId: changeId(`cycle-${n}`),
            });
            remember(entry);
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
            armExpiry(proposal);
            summary.outcome = 'proposed';
            summary.detail = proposal.id;
          }
        }
      }
    } catch (failure) {
      const cause = failure instanceof ActivityFailure ? failure.cause : failure;
      const type = cause instanceof ApplicationFailure ? cause.type : undefined;
      summary.outcome = type === ErrorType.InvalidInput ? 'no-eval-set' : 'failed';
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
    publish();
  }
}
