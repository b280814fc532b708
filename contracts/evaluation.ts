/**
 * Input, state, output and messages of the evaluation workflows. No runtime dependencies beyond the message
 * definitions, so clients import this module without pulling in a worker.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AlertEvent, AlertName, AlertPolicy, AlertState, BaselineSummary } from '../lib/eval/alerts.js';
import type { EvalItem } from '../lib/eval/dataset.js';
import type { EvalObservation, EvalScores } from '../lib/eval/scores.js';
import { tenantScopedId } from '../lib/tenant.js';

export interface EvalSettings {
  /** Time between batches. @default 300000 */
  intervalMs: number;
  /** Questions per batch. @default 10 */
  batchSize: number;
}

export const EVAL_LIMITS = {
  minIntervalMs: 1000,
  maxIntervalMs: 7 * 24 * 3600 * 1000,
  minBatchSize: 1,
  maxBatchSize: 1000,
} as const;

export const DEFAULT_EVAL_SETTINGS: EvalSettings = { intervalMs: 300_000, batchSize: 10 };
/** Cut-off of P@k, R@k and F1@k. @default 5 (RAGLINE_TOP_K's default: the answer never sees more chunks) */
export const DEFAULT_EVAL_K = 5;
/** Batch summaries kept for status and reports: a day at the default interval. */
export const EVAL_HISTORY_LIMIT = 288;
/** Pending proposals kept at once (the oldest undecided one gives way to a new one), and decided ones remembered. */
export const EVAL_PROPOSALS_LIMIT = 20;
/**
 * Byte bounds of what a proposal stores, in UTF-8 after NFKC normalisation (which can grow a string 18-fold): one
 * question, one id (question or document), a source or note, and every proposal the workflow keeps together, which
 * continue-as-new carries and Temporal limits (2 MB per payload).
 */
export const EVAL_PROPOSAL_BYTES = { question: 4096, id: 512, text: 1024, allProposals: 512 * 1024 } as const;

/** One finished batch, as kept in the bounded history. */
export interface BatchSummary {
  batch: number;
  at: string;
  setVersion: string;
  samples: number;
  errors: number;
  quality: number;
  precision: number;
  recall: number;
  f1: number;
  mrr10: number;
  ndcg10: number;
  recall10: number;
  citedRelevantShare: number;
  citationsPresentShare: number;
  degradedShare: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
}

/** Questions proposed into the set (by a person or the improvement loop), waiting for a person's decision. */
export interface EvalProposal {
  id: string;
  proposedAt: string;
  /** Who or what proposed it (e.g. `improvement-loop`, a user name). */
  source: string;
  note?: string;
  items: EvalItem[];
  status: 'pending' | 'accepted' | 'rejected';
  decidedBy?: string;
  decidedAt?: string;
  /** Set version after an accepted proposal was written into the set. */
  appliedVersion?: string;
}

/** Everything the workflow knows: what continue-as-new carries over, intact. */
export interface EvaluationState {
  settings: EvalSettings;
  paused: boolean;
  /** Batches run since the workflow was first started (over every run). */
  batches: number;
  /** Questions evaluated over every run. */
  questions: number;
  /** Continue-as-new runs so far. */
  continuedAsNew: number;
  /** Position in the set's (shuffled) order where the next batch starts. */
  cursor: number;
  setVersion?: string;
  setSize?: number;
  alerts: AlertState;
  history: BatchSummary[];
  proposals: EvalProposal[];
  /** Next proposal number (ids stay unique across runs). */
  nextProposal: number;
  startedAt: string;
  /** Why the last batch could not run (an unusable set), until one runs again. */
  lastError?: string;
}

export interface EvaluationInput {
  tenant: string;
  /** Evaluation set path as the worker sees it (ground-truth JSONL or BEIR folder). */
  dataset: string;
  /** The set's name (from `loadEvalSet`): part of the workflow id. */
  setName: string;
  settings?: Partial<EvalSettings>;
  alertPolicy?: Partial<AlertPolicy>;
  /** Cut-off of P@k, R@k and F1@k. @default 5 */
  k?: number;
  /** Continue as new after this many batches at the latest, even if Temporal does not suggest it yet. @default 50 */
  maxBatchesPerRun?: number;
  /** Carried over by continue-as-new; absent on the first start. */
  state?: EvaluationState;
}

export interface EvaluationStatus {
  tenant: string;
  setName: string;
  settings: EvalSettings;
  paused: boolean;
  /** What the workflow is doing: `running batch`, `waiting`, `paused`. */
  phase: 'running batch' | 'waiting' | 'paused' | 'continuing as new';
  batches: number;
  questions: number;
  continuedAsNew: number;
  setVersion?: string;
  setSize?: number;
  last?: BatchSummary;
  baseline: BaselineSummary;
  /** Last quality minus the baseline mean (0 without a baseline). */
  trend: number;
  alerts: AlertState['alerts'];
  firing: AlertName[];
  history: BatchSummary[];
  pendingProposals: EvalProposal[];
  nextBatchAt?: string;
  lastError?: string;
}

export interface ConfigureEvaluationInput {
  intervalMs?: number;
  batchSize?: number;
}

export interface ProposeEvalItemsInput {
  items: EvalItem[];
  source: string;
  note?: string;
}

export interface DecideEvalProposalInput {
  proposalId: string;
  decision: 'accept' | 'reject';
  /** The person deciding; required, so no decision is anonymous or automatic. */
  decidedBy: string;
}

export const pauseEvaluationSignal = defineSignal('pauseEvaluation');
export const resumeEvaluationSignal = defineSignal('resumeEvaluation');
/** Runs a batch now, whatever the interval (and even while paused: an explicit request). */
export const runEvaluationNowSignal = defineSignal('runEvaluationNow');
/** An Update, not a signal: the operator gets the new settings back, and a bad value is refused with the reason. */
export const configureEvaluationUpdate = defineUpdate<EvalSettings, [ConfigureEvaluationInput]>('configureEvaluation');
export const proposeEvalItemsUpdate = defineUpdate<EvalProposal, [ProposeEvalItemsInput]>('proposeEvalItems');
export const decideEvalProposalUpdate = defineUpdate<EvalProposal, [DecideEvalProposalInput]>('decideEvalProposal');
export const getEvaluationStatusQuery = defineQuery<EvaluationStatus>('getEvaluationStatus');

/** `eval:<tenant>:<set>`: one evaluation workflow per tenant and set (see {@link tenantScopedId}). */
export function evaluationWorkflowId(tenant: string, setName: string): string {
  return tenantScopedId('eval', tenant, setName);
}

/**
 * The id evaluations started before #24 ran under (`eval-<tenant>-<set>`, ambiguous: its tenant is read from the
 * running workflow before anything is done with it). Starting an evaluation adopts a running one of these.
 */
export function legacyEvaluationWorkflowId(tenant: string, setName: string): string {
  return `eval-${tenant}-${setName}`;
}

/** The whole state of a running evaluation, as continue-as-new would carry it. */
export const getEvaluationStateQuery = defineQuery<EvaluationState>('getEvaluationState');

/** The reason a settings change is refused, or undefined when it is acceptable. */
export function evalSettingsProblem(input: ConfigureEvaluationInput): string | undefined {
  if (input.intervalMs === undefined && input.batchSize === undefined) return 'nothing to change';
  if (input.intervalMs !== undefined) {
    const ms = input.intervalMs;
    if (!Number.isInteger(ms) || ms < EVAL_LIMITS.minIntervalMs || ms > EVAL_LIMITS.maxIntervalMs) {
      return `intervalMs must be an integer from ${EVAL_LIMITS.minIntervalMs} to ${EVAL_LIMITS.maxIntervalMs}, got ${String(ms)}`;
    }
  }
  if (input.batchSize !== undefined) {
    const n = input.batchSize;
    if (!Number.isInteger(n) || n < EVAL_LIMITS.minBatchSize || n > EVAL_LIMITS.maxBatchSize) {
      return `batchSize must be an integer from ${EVAL_LIMITS.minBatchSize} to ${EVAL_LIMITS.maxBatchSize}, got ${String(n)}`;
    }
  }
  return undefined;
}

// ---- one-off runs ----

export interface EvaluateOnceInput {
  tenant: string;
  dataset: string;
  /** Cut-off of P@k, R@k and F1@k. @default 5 */
  k?: number;
  /** Questions answered at once. @default 1 (latency figures of one query at a time) */
  concurrency?: number;
  /** Evaluate only the first `limit` questions. @default all */
  limit?: number;
}

export interface EvaluateOnceResult {
  tenant: string;
  setName: string;
  setVersion: string;
  problems: number;
  /** Relevant document ids of the evaluated questions that the tenant's corpus does not hold. */
  unknownDocIds: string[];
  scores: EvalScores;
  observations: EvalObservation[];
}

export interface EvalProgress {
  done: number;
  total: number;
}

export const getEvalProgressQuery = defineQuery<EvalProgress>('getEvalProgress');

/** An alert transition as the notify activity receives it. */
export interface EvalAlertNotice {
  tenant: string;
  setName: string;
  workflowId: string;
  event: AlertEvent;
}

/** Questions in one proposal, and relevant documents of one question. */
export const MAX_PROPOSED_ITEMS = 100;

const encoder = new TextEncoder();
/** UTF-8 length of a string; TextEncoder runs in the workflow sandbox too. */
export const utf8Bytes = (text: string): number => encoder.encode(text).length;

/**
 * Why a string is over its bound, or undefined: in UTF-8 bytes both as stored (raw) and after NFKC (as compared and
 * normalised later), whichever is larger — NFKC grows some strings 18-fold and shrinks others (composing accents).
 */
function sizeProblem(what: string, text: string, max: number): string | undefined {
  const bytes = Math.max(utf8Bytes(text), utf8Bytes(text.normalize('NFKC')));
  return bytes > max
    ? `${what} is ${bytes} bytes (UTF-8, raw or after NFKC normalisation, whichever is more); at most ${max} are accepted`
    : undefined;
}

/** Why a proposal of evaluation questions is refused, or undefined: shape, counts and byte bounds. */
export function proposalProblem(proposal: ProposeEvalItemsInput | undefined): string | undefined {
  if (!proposal || typeof proposal.source !== 'string' || proposal.source.trim() === '') {
    return 'a proposal names its source';
  }
  const { text: maxText } = EVAL_PROPOSAL_BYTES;
  const source = sizeProblem('the source', proposal.source, maxText);
  if (source) return source;
  if (proposal.note !== undefined) {
    const note =
      typeof proposal.note === 'string' ? sizeProblem('the note', proposal.note, maxText) : 'the note must be text';
    if (note) return note;
  }
  if (!Array.isArray(proposal.items) || proposal.items.length === 0) return 'a proposal holds at least one question';
  if (proposal.items.length > MAX_PROPOSED_ITEMS) return `a proposal holds at most ${MAX_PROPOSED_ITEMS} questions`;
  for (const item of proposal.items) {
    const problem = proposedItemProblem(item);
    if (problem) return problem;
  }
  return undefined;
}

/** Why one proposed question is refused, or undefined: shape and byte bounds. */
export function proposedItemProblem(item: ProposeEvalItemsInput['items'][number] | undefined): string | undefined {
  const { id: maxId, question: maxQuestion } = EVAL_PROPOSAL_BYTES;
  if (typeof item?.id !== 'string' || item.id.trim() === '') return 'every proposed question has an id';
  const id = sizeProblem('a question id', item.id, maxId);
  if (id) return id;
  if (typeof item.question !== 'string' || item.question.trim() === '') return `question ${item.id} has no text`;
  const question = sizeProblem(`question ${item.id}`, item.question, maxQuestion);
  if (question) return question;
  const relevant = Object.entries(item.relevant ?? {});
  if (relevant.length === 0 || relevant.some(([, g]) => typeof g !== 'number' || !(g > 0))) {
    return `question ${item.id} needs relevant documents with grades above 0`;
  }
  if (relevant.length > MAX_PROPOSED_ITEMS)
    return `question ${item.id} names more than ${MAX_PROPOSED_ITEMS} documents`;
  for (const [docId] of relevant) {
    const doc = sizeProblem(`a relevant document id of question ${item.id}`, docId, maxId);
    if (doc) return doc;
  }
  return undefined;
}
