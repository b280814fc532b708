import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import {
  DEFAULT_ALERT_POLICY,
  initialAlertState,
  summarizeBaseline,
  updateAlerts,
  type AlertName,
} from '../lib/eval/alerts.js';
import type { EvalItem } from '../lib/eval/dataset.js';
import { aggregateScores, itemQuality, type EvalObservation } from '../lib/eval/scores.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import { answerQueryWorkflow } from './answer-query.js';
import type { AnswerQueryResult } from '../contracts/query.js';
import {
  configureEvaluationUpdate,
  decideEvalProposalUpdate,
  DEFAULT_EVAL_K,
  DEFAULT_EVAL_SETTINGS,
  EVAL_HISTORY_LIMIT,
  EVAL_PROPOSALS_LIMIT,
  evalSettingsProblem,
  getEvalProgressQuery,
  getEvaluationStatusQuery,
  pauseEvaluationSignal,
  proposeEvalItemsUpdate,
  resumeEvaluationSignal,
  runEvaluationNowSignal,
  type BatchSummary,
  type EvaluateOnceInput,
  type EvaluateOnceResult,
  type EvaluationInput,
  type EvaluationState,
  type EvaluationStatus,
  type ProposeEvalItemsInput,
} from '../contracts/evaluation.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';

type Activities = ReturnType<typeof createActivities>;

const activities = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  retry: {
    maximumAttempts: 5,
    initialInterval: '1s',
    maximumInterval: '30s',
    nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES,
  },
});

// A webhook receiver may be down for a while: retry with backoff for up to ten minutes, then give up on that
// notice (metrics and the log line already carry it) rather than hold evaluation up.
const webhook = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '10m',
  retry: { maximumAttempts: 8, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m' },
});

const DEFAULT_MAX_BATCHES_PER_RUN = 50;
const MAX_PROPOSED_ITEMS = 100;

/**
 * Runs for months: every interval it samples a batch of the evaluation set, answers each question through the real
 * query workflow with the caches bypassed, scores the answers against the ground truth, keeps a rolling baseline
 * and a bounded history, raises and resolves alerts, and continues as new (state intact) before its history grows
 * large. One per tenant and set: `eval-<tenant>-<set>`.
 */
export async function evaluationWorkflow(input: EvaluationInput): Promise<void> {
  const policy = { ...DEFAULT_ALERT_POLICY, ...input.alertPolicy };
  const k = input.k ?? DEFAULT_EVAL_K;
  const maxBatchesPerRun = input.maxBatchesPerRun ?? DEFAULT_MAX_BATCHES_PER_RUN;
  const state: EvaluationState = input.state ?? {
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
  const { workflowId } = workflowInfo();
  let phase: EvaluationStatus['phase'] = state.paused ? 'paused' : 'waiting';
  let runNow = false;
  let settingsChanged = 0;
  let nextBatchAt: number | undefined;
  const deciding = new Set<string>();

  setHandler(pauseEvaluationSignal, () => {
    state.paused = true;
  });
  setHandler(resumeEvaluationSignal, () => {
    state.paused = false;
  });
  setHandler(runEvaluationNowSignal, () => {
    runNow = true;
  });
  setHandler(
    configureEvaluationUpdate,
    (change) => {
      state.settings = {
        intervalMs: change.intervalMs ?? state.settings.intervalMs,
        batchSize: change.batchSize ?? state.settings.batchSize,
      };
      settingsChanged += 1;
      return state.settings;
    },
    { validator: (change) => refuse(evalSettingsProblem(change ?? {})) },
  );
  setHandler(
    proposeEvalItemsUpdate,
    (proposal) => {
      const pending = state.proposals.filter((p) => p.status === 'pending');
      const decided = state.proposals.filter((p) => p.status !== 'pending');
      const stored = {
        id: `proposal-${state.nextProposal}`,
        proposedAt: new Date().toISOString(),
        source: proposal.source,
        note: proposal.note,
        items: proposal.items,
        status: 'pending' as const,
      };
      state.nextProposal += 1;
      // Bounded: the oldest undecided proposals give way, and only the last few decisions are remembered.
      state.proposals = [
        ...decided.slice(-EVAL_PROPOSALS_LIMIT),
        ...pending.slice(-(EVAL_PROPOSALS_LIMIT - 1)),
        stored,
      ];
      return stored;
    },
    { validator: (proposal) => refuse(proposalProblem(proposal)) },
  );
  setHandler(
    decideEvalProposalUpdate,
    async (decision) => {
      const proposal = state.proposals.find((p) => p.id === decision.proposalId)!;
      // Two decisions on one proposal at once both pass the validator; the second is refused here.
      if (deciding.has(proposal.id)) refuse(`proposal ${proposal.id} is being decided`);
      deciding.add(proposal.id);
      try {
        if (decision.decision === 'accept') {
          const applied = await activities.appendEvalItems({ dataset: input.dataset, items: proposal.items });
          proposal.appliedVersion = applied.version;
        }
      } finally {
        deciding.delete(proposal.id);
      }
      proposal.status = decision.decision === 'accept' ? 'accepted' : 'rejected';
      proposal.decidedBy = decision.decidedBy;
      proposal.decidedAt = new Date().toISOString();
      return proposal;
    },
    {
      validator: (decision) => {
        const proposal = state.proposals.find((p) => p.id === decision?.proposalId);
        if (!proposal) return refuse(`no proposal ${String(decision?.proposalId)}`);
        if (proposal.status !== 'pending') return refuse(`proposal ${proposal.id} is already ${proposal.status}`);
        if (decision.decision !== 'accept' && decision.decision !== 'reject') {
          return refuse('decision must be "accept" or "reject"');
        }
        if (typeof decision.decidedBy !== 'string' || decision.decidedBy.trim() === '') {
          return refuse('decidedBy must name the person deciding');
        }
      },
    },
  );
  setHandler(getEvaluationStatusQuery, () => status());

  const status = (): EvaluationStatus => {
    const baseline = summarizeBaseline(state.alerts.baseline);
    const last = state.history.at(-1);
    const firing = (Object.keys(state.alerts.alerts) as AlertName[]).filter((name) => state.alerts.alerts[name].firing);
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
      firing,
      history: state.history,
      pendingProposals: state.proposals.filter((p) => p.status === 'pending'),
      nextBatchAt: nextBatchAt === undefined ? undefined : new Date(nextBatchAt).toISOString(),
      lastError: state.lastError,
    };
  };

  const describe = () => {
    const s = status();
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
  };
  describe();

  const lastAt = state.history.at(-1)?.at;
  let lastEnd = lastAt === undefined ? Number.NEGATIVE_INFINITY : Date.parse(lastAt);
  let batchesThisRun = 0;
  for (;;) {
    phase = 'waiting';
    while (!runNow) {
      if (state.paused) {
        nextBatchAt = undefined;
        describe();
        await condition(() => runNow || !state.paused);
        describe();
        continue;
      }
      const due = lastEnd + state.settings.intervalMs;
      nextBatchAt = Number.isFinite(due) ? due : undefined;
      const remaining = due - Date.now();
      if (remaining <= 0) break;
      const seen = settingsChanged;
      await condition(() => runNow || state.paused || settingsChanged !== seen, remaining);
    }
    runNow = false;
    phase = 'running batch';
    nextBatchAt = undefined;
    await runBatch();
    lastEnd = Date.now();
    batchesThisRun += 1;

    if (workflowInfo().continueAsNewSuggested || batchesThisRun >= maxBatchesPerRun) {
      phase = 'continuing as new';
      // Updates in flight (a proposal decision writing the set) finish before the state is handed over.
      await condition(allHandlersFinished);
      state.continuedAsNew += 1;
      await continueAsNew<typeof evaluationWorkflow>({ ...input, state });
    }
  }

  async function runBatch(): Promise<void> {
    let sample;
    try {
      sample = await activities.sampleEvalItems({
        dataset: input.dataset,
        offset: state.cursor,
        size: state.settings.batchSize,
      });
    } catch (failure) {
      // A set edited into an unusable state must not end months of history: skip, say why, retry next interval.
      state.lastError = `evaluation set unusable: ${failureMessage(failure)}`;
      describe();
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
    const scores = aggregateScores(observations, k);
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
        itemQuality: Object.fromEntries(observations.map((o) => [o.itemId, itemQuality(o, k)])),
      },
      policy,
    );
    state.alerts = update.state;
    const firing = (Object.keys(state.alerts.alerts) as AlertName[]).filter((name) => state.alerts.alerts[name].firing);
    await activities.recordEvalBatch({
      tenant: input.tenant,
      setName: input.setName,
      workflowId,
      summary,
      baselineQuality: summarizeBaseline(state.alerts.baseline).qualityMean,
      firing,
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
    describe();
  }
}

/**
 * One pass over the whole set (or its first `limit` questions), for `ragline eval run` and the benchmark: the same
 * query workflows and the same scoring as the continuous evaluation, with progress as a query.
 */
export async function evaluateOnceWorkflow(input: EvaluateOnceInput): Promise<EvaluateOnceResult> {
  const progress = { done: 0, total: 0 };
  setHandler(getEvalProgressQuery, () => progress);
  const first = await activities.sampleEvalItems({ dataset: input.dataset, offset: 0, size: 1, ordered: true });
  const size = Math.min(input.limit ?? first.total, first.total);
  const sample = await activities.sampleEvalItems({ dataset: input.dataset, offset: 0, size, ordered: true });
  progress.total = sample.items.length;
  const { unknown } = await activities.findUnknownDocIds({
    tenant: input.tenant,
    docIds: [...new Set(sample.items.flatMap((item) => Object.keys(item.relevant)))],
  });
  const { workflowId } = workflowInfo();
  const observations = await answerAll(sample.items, {
    tenant: input.tenant,
    childId: (item, i) => `${workflowId}-${i}-${safeId(item.id)}`,
    concurrency: input.concurrency ?? 1,
    onDone: () => {
      progress.done += 1;
    },
  });
  return {
    tenant: input.tenant,
    setName: sample.name,
    setVersion: sample.version,
    problems: sample.problems,
    unknownDocIds: unknown,
    scores: aggregateScores(observations, input.k ?? DEFAULT_EVAL_K),
    observations,
  };
}

/**
 * Answers each question with the real query workflow as a child, caches bypassed: evaluation measures retrieval and
 * generation, with the production retries and fallbacks, and every question is inspectable in the Temporal UI.
 */
async function answerAll(
  items: EvalItem[],
  options: {
    tenant: string;
    childId: (item: EvalItem, index: number) => string;
    concurrency: number;
    onDone?: () => void;
  },
): Promise<EvalObservation[]> {
  const observations: EvalObservation[] = new Array<EvalObservation>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      const item = items[index]!;
      observations[index] = await answerOne(item, options.tenant, options.childId(item, index));
      options.onDone?.();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, items.length)) }, worker));
  return observations;
}

async function answerOne(item: EvalItem, tenant: string, childId: string): Promise<EvalObservation> {
  try {
    const result: AnswerQueryResult = await executeChild(answerQueryWorkflow, {
      workflowId: childId,
      args: [{ query: item.question, tenant, options: { bypassCache: true } }],
      typedSearchAttributes: [{ key: tenantSearchAttribute, value: tenant }],
      staticSummary: `evaluation question ${item.id}`,
    });
    const byN = new Map(result.sources.map((s) => [s.n, s.docId]));
    return {
      itemId: item.id,
      queryId: result.queryId,
      rankedDocIds: [...result.sources].sort((a, b) => a.n - b.n).map((s) => s.docId),
      relevant: item.relevant,
      citedDocIds: (result.citations ?? []).flatMap((n) => byN.get(n) ?? []),
      degraded: result.degraded,
      latencyMs: result.timingsMs.total,
    };
  } catch (failure) {
    return {
      itemId: item.id,
      queryId: childId,
      rankedDocIds: [],
      relevant: item.relevant,
      citedDocIds: [],
      degraded: true,
      latencyMs: 0,
      error:
        failure instanceof Error
          ? failure.cause instanceof Error
            ? failure.cause.message
            : failure.message
          : String(failure),
    };
  }
}

function failureMessage(failure: unknown): string {
  const cause = failure instanceof Error && failure.cause instanceof Error ? failure.cause : failure;
  return cause instanceof Error ? cause.message : String(cause);
}

function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80);
}

function refuse(problem: string | undefined): void {
  if (problem) throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
}

function proposalProblem(proposal: ProposeEvalItemsInput | undefined): string | undefined {
  if (!proposal || typeof proposal.source !== 'string' || proposal.source.trim() === '') {
    return 'a proposal names its source';
  }
  if (!Array.isArray(proposal.items) || proposal.items.length === 0) return 'a proposal holds at least one question';
  if (proposal.items.length > MAX_PROPOSED_ITEMS) return `a proposal holds at most ${MAX_PROPOSED_ITEMS} questions`;
  for (const item of proposal.items) {
    if (typeof item?.id !== 'string' || item.id.trim() === '') return 'every proposed question has an id';
    if (typeof item.question !== 'string' || item.question.trim() === '') return `question ${item.id} has no text`;
    const grades = Object.values(item.relevant ?? {});
    if (grades.length === 0 || grades.some((g) => typeof g !== 'number' || !(g > 0))) {
      return `question ${item.id} needs relevant documents with grades above 0`;
    }
  }
  return undefined;
}
