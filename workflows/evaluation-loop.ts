import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import {
  DEFAULT_ALERT_POLICY,
  initialAlertState,
  summarizeBaseline,
  updateAlerts,
  type AlertName,
  type AlertPolicy,
} from '../lib/eval/alerts.js';
import { aggregateScores, itemQuality } from '../lib/eval/scores.js';
import { ErrorType } from '../lib/errors.js';
import { answerAll, evalActivities as activities, safeId, webhook } from './evaluation-steps.js';
import {
  configureEvaluationUpdate,
  decideEvalProposalUpdate,
  DEFAULT_EVAL_K,
  DEFAULT_EVAL_SETTINGS,
  EVAL_HISTORY_LIMIT,
  EVAL_PROPOSALS_LIMIT,
  EVAL_PROPOSAL_BYTES,
  evalSettingsProblem,
  getEvaluationStateQuery,
  getEvaluationStatusQuery,
  pauseEvaluationSignal,
  proposeEvalItemsUpdate,
  resumeEvaluationSignal,
  runEvaluationNowSignal,
  type BatchSummary,
  type ConfigureEvaluationInput,
  type DecideEvalProposalInput,
  type EvalProposal,
  type EvalSettings,
  type EvaluationInput,
  type EvaluationState,
  type EvaluationStatus,
  proposalProblem,
  utf8Bytes,
  type ProposeEvalItemsInput,
} from '../contracts/evaluation.js';

const DEFAULT_MAX_BATCHES_PER_RUN = 50;

/**
 * The continuous evaluation's state and its message handlers, after Temporal's `safe-message-handlers` sample: what
 * each signal and update changes and what it refuses is read here, and `evaluationWorkflow` only hands off to it.
 * `state` is the one plain object continue-as-new carries; the other fields belong to the current run.
 */
export class EvaluationLoop {
  readonly state: EvaluationState;
  private readonly policy: AlertPolicy;
  private readonly k: number;
  private readonly maxBatchesPerRun: number;
  private readonly workflowId: string;
  private phase: EvaluationStatus['phase'];
  private runNow = false;
  /** Counts configuration changes, so a wait for the next batch starts over with the new interval. */
  private settingsChanged = 0;
  private nextBatchAt: number | undefined;
  /** Proposals whose acceptance is writing the set right now. */
  private readonly deciding = new Set<string>();

  constructor(private readonly input: EvaluationInput) {
    this.policy = { ...DEFAULT_ALERT_POLICY, ...input.alertPolicy };
    this.k = input.k ?? DEFAULT_EVAL_K;
    this.maxBatchesPerRun = input.maxBatchesPerRun ?? DEFAULT_MAX_BATCHES_PER_RUN;
    this.state = input.state ?? {
      settings: { ...DEFAULT_EVAL_SETTINGS, ...input.settings },
      paused: false,
      batches: 0,
      questions: 0,
      continuedAsNew: 0,
      cursor: 0,
      alerts: initialAlertState(),
      history: [],
      proposals: [],
      nextProposal: 1,
      startedAt: new Date().toISOString(),
    };
    this.workflowId = workflowInfo().workflowId;
    this.phase = this.state.paused ? 'paused' : 'waiting';
  }

  /** Signals are nudges that cannot go wrong; changes that need an answer are Updates whose validator refuses. */
  registerHandlers(): void {
    setHandler(pauseEvaluationSignal, () => {
      this.state.paused = true;
    });
    setHandler(resumeEvaluationSignal, () => {
      this.state.paused = false;
    });
    setHandler(runEvaluationNowSignal, () => {
      this.runNow = true;
    });
    setHandler(configureEvaluationUpdate, (change) => this.configure(change), {
      validator: (change) => refuse(evalSettingsProblem(change ?? {})),
    });
    setHandler(proposeEvalItemsUpdate, (proposal) => this.propose(proposal), {
      validator: (proposal) => {
        refuse(proposalProblem(proposal));
        refuse(this.proposalsSizeProblem(proposal));
      },
    });
    setHandler(decideEvalProposalUpdate, (decision) => this.decide(decision), {
      validator: (decision) => refuse(this.decisionProblem(decision)),
    });
    setHandler(getEvaluationStatusQuery, () => this.status());
    setHandler(getEvaluationStateQuery, () => this.state);
  }

  /**
   * Runs a batch every interval (or at once on the run-now signal; a pause stops the clock) and returns when this
   * run's history should be handed over: Temporal suggests it, or `maxBatchesPerRun` batches have run.
   */
  async runBatches(): Promise<void> {
    this.describe();
    const lastAt = this.state.history.at(-1)?.at;
    let lastEnd = lastAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(lastAt);
    let batchesThisRun = 0;
    for (;;) {
      await this.waitForNextBatch(lastEnd);
      this.phase = 'running batch';
      this.nextBatchAt = undefined;
      await this.runBatch();
      lastEnd = Date.now();
      batchesThisRun += 1;
      if (workflowInfo().continueAsNewSuggested || batchesThisRun >= this.maxBatchesPerRun) {
        this.phase = 'continuing as new';
        return;
      }
    }
  }

  /** The state for the next run, once every handler in flight has finished. */
  async handOver(): Promise<EvaluationState> {
    // Updates in flight (a proposal decision writing the set) finish before the state is handed over.
    await condition(allHandlersFinished);
    this.state.continuedAsNew += 1;
    return this.state;
  }

  private configure(change: ConfigureEvaluationInput): EvalSettings {
    this.state.settings = {
      intervalMs: change.intervalMs ?? this.state.settings.intervalMs,
      batchSize: change.batchSize ?? this.state.settings.batchSize,
    };
    this.settingsChanged += 1;
    return this.state.settings;
  }

  private propose(proposal: ProposeEvalItemsInput): EvalProposal {
    const state = this.state;
    const stored = this.stored(proposal);
    state.nextProposal += 1;
    state.proposals = this.keptWith(stored);
    return stored;
  }

  private stored(proposal: ProposeEvalItemsInput): EvalProposal {
    return {
      id: `proposal-${this.state.nextProposal}`,
      proposedAt: new Date().toISOString(),
      source: proposal.source,
      note: proposal.note,
      items: proposal.items,
      status: 'pending' as const,
    };
  }

  /**
   * Bounded: the oldest undecided proposals give way, and only the last few decisions are remembered — the oldest of
   * them dropped first when the whole would pass the byte budget, since they are only a record. Pending ones and the
   * new one are never dropped for size: a proposal they do not leave room for is refused.
   */
  private keptWith(stored: EvalProposal): EvalProposal[] {
    const pending = this.state.proposals.filter((p) => p.status === 'pending');
    const decided = this.state.proposals.filter((p) => p.status !== 'pending').slice(-EVAL_PROPOSALS_LIMIT);
    const kept = [...pending.slice(-(EVAL_PROPOSALS_LIMIT - 1)), stored];
    let bytes = utf8Bytes(JSON.stringify(kept));
    const remembered: EvalProposal[] = [];
    for (const proposal of decided.reverse()) {
      bytes += utf8Bytes(JSON.stringify(proposal)) + 1;
      if (bytes > EVAL_PROPOSAL_BYTES.allProposals) break;
      remembered.unshift(proposal);
    }
    return [...remembered, ...kept];
  }

  /** Refuses a proposal that would make the proposals kept, and so the state continue-as-new carries, too large. */
  private proposalsSizeProblem(proposal: ProposeEvalItemsInput): string | undefined {
    const bytes = utf8Bytes(JSON.stringify(this.keptWith(this.stored(proposal))));
    return bytes > EVAL_PROPOSAL_BYTES.allProposals
      ? `the proposals kept would take ${bytes} bytes; at most ${EVAL_PROPOSAL_BYTES.allProposals} are kept: decide pending proposals first`
      : undefined;
  }

  private decisionProblem(decision: DecideEvalProposalInput): string | undefined {
    const proposal = this.state.proposals.find((p) => p.id === decision?.proposalId);
    if (!proposal) return `no proposal ${String(decision?.proposalId)}`;
    if (proposal.status !== 'pending') return `proposal ${proposal.id} is already ${proposal.status}`;
    if (decision.decision !== 'accept' && decision.decision !== 'reject')
      return 'decision must be "accept" or "reject"';
    if (typeof decision.decidedBy !== 'string' || decision.decidedBy.trim() === '') {
      return 'decidedBy must name the person deciding';
    }
    return undefined;
  }

  private async decide(decision: DecideEvalProposalInput): Promise<EvalProposal> {
    const proposal = this.state.proposals.find((p) => p.id === decision.proposalId)!;
    // Two decisions on one proposal at once both pass the validator; the second is refused here.
    if (this.deciding.has(proposal.id)) refuse(`proposal ${proposal.id} is being decided`);
    this.deciding.add(proposal.id);
    try {
      if (decision.decision === 'accept') {
        const applied = await activities.appendEvalItems({
          dataset: this.input.dataset,
          tenant: this.input.tenant,
          items: proposal.items,
        });
        proposal.appliedVersion = applied.version;
      }
    } finally {
      this.deciding.delete(proposal.id);
    }
    proposal.status = decision.decision === 'accept' ? 'accepted' : 'rejected';
    proposal.decidedBy = decision.decidedBy;
    proposal.decidedAt = new Date().toISOString();
    return proposal;
  }

  /** Until the interval since the last batch is over, or the run-now signal comes; paused, only run-now ends it. */
  private async waitForNextBatch(lastEnd: number): Promise<void> {
    this.phase = 'waiting';
    while (!this.runNow) {
      if (this.state.paused) {
        this.nextBatchAt = undefined;
        this.describe();
        await condition(() => this.runNow || !this.state.paused);
        this.describe();
        continue;
      }
      const due = lastEnd + this.state.settings.intervalMs;
      this.nextBatchAt = Number.isFinite(due) ? due : undefined;
      const remaining = due - Date.now();
      if (remaining <= 0) break;
      const seen = this.settingsChanged;
      await condition(() => this.runNow || this.state.paused || this.settingsChanged !== seen, remaining);
    }
    this.runNow = false;
  }

  private async runBatch(): Promise<void> {
    const { input, state, workflowId } = this;
    let sample;
    try {
      sample = await activities.sampleEvalItems({
        dataset: input.dataset,
        tenant: input.tenant,
        offset: state.cursor,
        size: state.settings.batchSize,
      });
    } catch (failure) {
      // A set edited into an unusable state must not end months of history: skip, say why, retry next interval.
      state.lastError = `evaluation set unusable: ${failureMessage(failure)}`;
      this.describe();
      return;
    }
    state.lastError = undefined;
    if (state.setVersion !== undefined && sample.version !== state.setVersion) {
      // Different questions have a different normal: the old baseline would flag (or hide) a change that is not one.
      state.alerts = { ...state.alerts, baseline: { quality: [], latencyP95Ms: [] }, reference: {} };
    }
    state.setVersion = sample.version;
    state.setSize = sample.total;
    state.cursor = sample.nextOffset;
    const batch = state.batches + 1;
    const observations = await answerAll(sample.items, {
      tenant: input.tenant,
      childId: (item, i) => `${workflowId}-b${batch}-${i}-${safeId(item.id)}`,
      concurrency: 1,
    });
    const scores = aggregateScores(observations, this.k);
    const at = new Date().toISOString();
    const summary: BatchSummary = {
      batch,
      at,
      setVersion: sample.version,
      samples: scores.samples - scores.errors,
      errors: scores.errors,
      quality: scores.quality,
      precision: scores.precision,
      recall: scores.recall,
      f1: scores.f1,
      mrr10: scores.mrr10,
      ndcg10: scores.ndcg10,
      recall10: scores.recall10,
      citedRelevantShare: scores.citedRelevantShare,
      citationsPresentShare: scores.citationsPresentShare,
      degradedShare: scores.degradedShare,
      latencyP50Ms: scores.latencyP50Ms,
      latencyP95Ms: scores.latencyP95Ms,
    };
    state.batches = batch;
    state.questions += observations.length;
    state.history = [...state.history, summary].slice(-EVAL_HISTORY_LIMIT);
    // Failed questions count as samples for the quality alert: a pipeline that errors out is a degradation too.
    const update = updateAlerts(
      state.alerts,
      {
        batch,
        at,
        samples: scores.samples,
        quality: scores.quality,
        latencyP95Ms: scores.latencyP95Ms,
        itemQuality: Object.fromEntries(observations.map((o) => [o.itemId, itemQuality(o, this.k)])),
      },
      this.policy,
    );
    state.alerts = update.state;
    await activities.recordEvalBatch({
      tenant: input.tenant,
      setName: input.setName,
      workflowId,
      summary,
      baselineQuality: summarizeBaseline(state.alerts.baseline).qualityMean,
      firing: firingAlerts(state),
      outcomes: {
        ok: observations.filter((o) => !o.error && !o.degraded).length,
        degraded: observations.filter((o) => !o.error && o.degraded).length,
        error: observations.filter((o) => o.error).length,
      },
    });
    for (const event of update.events) {
      const notice = { tenant: input.tenant, setName: input.setName, workflowId, event };
      await activities.recordEvalAlert(notice);
      // The notice is in metrics and logs already; a receiver that stays down must not stop evaluation.
      await webhook.sendEvalWebhook(notice).catch(() => undefined);
    }
    this.describe();
  }

  private status(): EvaluationStatus {
    const { input, state, phase, nextBatchAt } = this;
    const baseline = summarizeBaseline(state.alerts.baseline);
    const last = state.history.at(-1);
    return {
      tenant: input.tenant,
      setName: input.setName,
      settings: state.settings,
      paused: state.paused,
      phase: state.paused && phase === 'waiting' ? 'paused' : phase,
      batches: state.batches,
      questions: state.questions,
      continuedAsNew: state.continuedAsNew,
      setVersion: state.setVersion,
      setSize: state.setSize,
      last,
      baseline,
      trend: last && baseline.batches > 0 ? last.quality - baseline.qualityMean : 0,
      alerts: state.alerts.alerts,
      firing: firingAlerts(state),
      history: state.history,
      pendingProposals: state.proposals.filter((p) => p.status === 'pending'),
      nextBatchAt: nextBatchAt === undefined ? undefined : new Date(nextBatchAt).toISOString(),
      lastError: state.lastError,
    };
  }

  /** What an operator sees in the Temporal UI without running a query: the memo and the current details. */
  private describe(): void {
    const { input, state } = this;
    const s = this.status();
    const last = s.last;
    const summary = last
      ? `quality ${last.quality.toFixed(3)} (baseline ${s.baseline.qualityMean.toFixed(3)}), nDCG@10 ${last.ndcg10.toFixed(3)}, ` +
        `p95 ${Math.round(last.latencyP95Ms)} ms, ${s.firing.length > 0 ? `FIRING: ${s.firing.join(', ')}` : 'no alert'}, ` +
        `batch ${s.batches}${s.paused ? ', paused' : ''}`
      : `no batch yet${s.paused ? ', paused' : ''}`;
    const problem = s.lastError ? ` — ${s.lastError}` : '';
    upsertMemo({
      summary: summary + problem,
      tenant: input.tenant,
      evalSet: input.setName,
      setVersion: s.setVersion ?? '',
    });
    setCurrentDetails(
      [
        `**Evaluation of \`${input.setName}\` for tenant \`${input.tenant}\`** — every ${state.settings.intervalMs / 1000} s, ${state.settings.batchSize} questions`,
        summary + problem,
        `${s.questions} questions over ${s.batches} batches, ${s.continuedAsNew} continue-as-new, ${s.pendingProposals.length} pending proposal(s)`,
      ].join('\n\n'),
    );
  }
}

function firingAlerts(state: EvaluationState): AlertName[] {
  return (Object.keys(state.alerts.alerts) as AlertName[]).filter((name) => state.alerts.alerts[name].firing);
}

function failureMessage(failure: unknown): string {
  const cause = failure instanceof Error && failure.cause instanceof Error ? failure.cause : failure;
  return cause instanceof Error ? cause.message : String(cause);
}

/** An Update validator's refusal: the Update fails for its caller and never reaches the history. */
function refuse(problem: string | undefined): void {
  if (problem) throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
}
