/**
 * Input, state, output and messages of the improvement workflow. No runtime dependencies beyond the message
 * definitions, so the CLI and the HTTP API import this module without pulling in a worker.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { LogAnalysis } from '../lib/improve/analysis.js';
import type { AuditEntry, MeasuredEffect } from '../lib/improve/param-store.js';
import type { ParamVersion, RetrievalParams } from '../lib/improve/params.js';
import { OPERATOR_PATTERN, tenantScopedId } from '../lib/tenant.js';

export interface ImprovementSettings {
  /** Time between cycles. @default 3600000 (RAGLINE_IMPROVE_INTERVAL_SECONDS) */
  intervalMs: number;
  /** How far back each cycle reads the query log. @default 86400000 (RAGLINE_IMPROVE_WINDOW_HOURS) */
  windowMs: number;
  /** How long a proposal waits for a person before it expires. @default 86400000 (RAGLINE_APPROVAL_TTL_SECONDS) */
  approvalTtlMs: number;
  /** Evaluation set every candidate is shadow-evaluated on, as the worker reads it. @default RAGLINE_EVAL_SET */
  evalSet: string;
  /** Operators allowed to approve, reject, set and roll back. @default RAGLINE_APPROVERS */
  approvers: string[];
  /**
   * Multiplies every parameter's auto-apply step: 1 applies the steps in lib/improve/params.ts, 0 sends every change
   * to a person. @default 1
   */
  autoApplyScale: number;
}

export const DEFAULT_IMPROVEMENT_SETTINGS: ImprovementSettings = {
  intervalMs: 3_600_000,
  windowMs: 86_400_000,
  approvalTtlMs: 86_400_000,
  evalSet: 'sample-corpus/ground-truth.jsonl',
  approvers: [],
  autoApplyScale: 1,
};

/** Longest reason an operator may give; longer ones are refused rather than cut. */
export const MAX_REASON_CHARS = 500;
/** Cycle summaries and decided proposals kept in the state (and so across continue-as-new). */
export const IMPROVEMENT_HISTORY_LIMIT = 100;
/** Evaluation item ids remembered as proposed. */
export const EVAL_PROPOSED_LIMIT = 1000;
/** The actor of automatic changes in the audit log. */
export const LOOP_ACTOR = 'improvement-loop';

export type ProposalStatus = 'pending' | 'approved' | 'rejected' | 'expired';

/** A measured parameter change too large to apply without a person. */
export interface ParamProposal {
  id: string;
  createdAt: string;
  expiresAt: string;
  status: ProposalStatus;
  /** The version it was measured against; approving it once another version is current is refused. */
  fromVersion: number;
  from: RetrievalParams;
  params: RetrievalParams;
  /** `name a→b, …` */
  changes: string;
  effect: MeasuredEffect;
  decidedBy?: string;
  decidedAt?: string;
  decisionReason?: string;
  appliedVersion?: number;
  /**
   * Why the last approval could not be applied (the parameter store refused or was down). The proposal stays
   * pending, so it can be approved again; cleared once an approval is applied.
   */
  applyError?: string;
}

/** `superseded`: the parameters changed while the cycle measured, so it applied and proposed nothing. */
export type CycleOutcome =
  'auto-applied' | 'proposed' | 'no-gain' | 'awaiting-approval' | 'no-eval-set' | 'failed' | 'superseded';

/** What a cycle did with its well-rated questions (step 4 of the evaluation issue). */
export interface EvalProposalSummary {
  outcome: 'proposed' | 'nothing-new' | 'no-evaluation-workflow' | 'failed';
  /** The evaluation workflow the questions went to. */
  workflowId?: string;
  proposalId?: string;
  questions: number;
  skipped: number;
  /** Questions left out because the evaluation workflow would refuse them (over a byte bound, say). */
  refused?: number;
  detail?: string;
}

export interface CycleSummary {
  cycle: number;
  at: string;
  volume: number;
  meanQuality: number;
  outcome: CycleOutcome;
  /** Parameter version after the cycle. */
  version: number;
  changes?: string;
  effect?: MeasuredEffect;
  candidates?: number;
  detail?: string;
  evalProposal?: EvalProposalSummary;
}

/** Everything the workflow knows: what continue-as-new carries over, intact. */
export interface ImprovementState {
  settings: ImprovementSettings;
  cycles: number;
  continuedAsNew: number;
  nextProposal: number;
  current?: ParamVersion;
  proposals: ParamProposal[];
  history: CycleSummary[];
  lastAnalysis?: LogAnalysis;
  /** Evaluation item ids this loop has proposed (newest last, bounded), so none is proposed twice. */
  evalProposed?: string[];
  /** Changes of the approvers allowlist, newest last (bounded): who changed it, when, from what to what. */
  approverChanges?: ApproverChange[];
}

/** One change of a loop's approvers allowlist, as its audit keeps it. */
export interface ApproverChange {
  at: string;
  actor: string;
  reason: string;
  from: string[];
  to: string[];
}

/** Replaces a loop's approvers allowlist, e.g. when RAGLINE_APPROVERS changed (`ragline up` and `improve start`). */
export interface UpdateApproversInput {
  approvers: string[];
  /** Who changes it (an operator, or `configuration` for RAGLINE_APPROVERS); written to the audit. */
  actor: string;
  reason: string;
}

/** Approver changes a loop keeps in its state. */
export const APPROVER_CHANGES_LIMIT = 20;

/** Why an approvers change is refused, or undefined. An empty list is allowed: it lets nobody decide. */
export function approversProblem(input: UpdateApproversInput | undefined): string | undefined {
  if (!input || !Array.isArray(input.approvers)) return 'approvers must be a list of operator names';
  if (input.approvers.length > 100) return `at most 100 approvers, not ${input.approvers.length}`;
  const bad = input.approvers.find((name) => typeof name !== 'string' || !OPERATOR_PATTERN.test(name));
  if (bad !== undefined) return `approver ${JSON.stringify(bad)} must be 1–100 letters, digits, '.', '_', '@' or '-'`;
  if (typeof input.actor !== 'string' || input.actor.trim() === '') return 'the actor is missing';
  if (typeof input.reason !== 'string' || input.reason.trim() === '') return 'a reason is required';
  if (input.reason.length > MAX_REASON_CHARS)
    return `the reason is ${input.reason.length} characters; at most ${MAX_REASON_CHARS} are accepted`;
  return undefined;
}

export interface ImprovementInput {
  tenant: string;
  settings?: Partial<ImprovementSettings>;
  /** Carried by continue-as-new. */
  state?: ImprovementState;
  /** Cycles per run before continuing as new (tests make it small). @default 50 */
  maxCyclesPerRun?: number;
}

export interface DecideProposalInput {
  proposalId: string;
  /** Who decides: checked against the allowlist, and written to the audit log. */
  operator: string;
  reason: string;
}

export interface DecideProposalSignalInput extends DecideProposalInput {
  decision: 'approve' | 'reject';
}

export interface SetParamsInput {
  operator: string;
  reason: string;
  params: Partial<RetrievalParams>;
}

export interface RollbackParamsInput {
  operator: string;
  reason: string;
}

export interface ImprovementStatus {
  tenant: string;
  settings: ImprovementSettings;
  cycles: number;
  continuedAsNew: number;
  current?: ParamVersion;
  pending: ParamProposal[];
  proposals: ParamProposal[];
  history: CycleSummary[];
  lastAnalysis?: LogAnalysis;
  approverChanges?: ApproverChange[];
}

/** Fire-and-forget: start a cycle now instead of at the next interval. */
export const runImprovementNowSignal = defineSignal('runImprovementNow');
/** Updates, not signals: the operator learns at once whether the decision was accepted, and why not. */
export const approveProposalUpdate = defineUpdate<ParamProposal, [DecideProposalInput]>('approveProposal');
export const rejectProposalUpdate = defineUpdate<ParamProposal, [DecideProposalInput]>('rejectProposal');
/** The same decision for clients that cannot wait; an invalid one is ignored (and logged by the workflow). */
export const decideProposalSignal = defineSignal<[DecideProposalSignalInput]>('decideProposal');
export const setParamsUpdate = defineUpdate<AuditEntry, [SetParamsInput]>('setParams');
export const rollbackParamsUpdate = defineUpdate<AuditEntry, [RollbackParamsInput]>('rollbackParams');
/** Replaces the approvers allowlist, audited: how a change of RAGLINE_APPROVERS reaches a running loop. */
export const updateApproversUpdate = defineUpdate<ApproverChange, [UpdateApproversInput]>('updateApprovers');
export const getImprovementStatusQuery = defineQuery<ImprovementStatus>('getImprovementStatus');

/** `improve:<tenant>`: one improvement workflow per tenant. */
export function improvementWorkflowId(tenant: string): string {
  return tenantScopedId('improve', tenant);
}

/**
 * The id loops started before #24 ran under (`improve-<tenant>`). Starting a loop adopts a running one of these
 * (its state, then it is terminated), so an upgrade neither keeps two loops per tenant nor loses pending proposals.
 */
export function legacyImprovementWorkflowId(tenant: string): string {
  return `improve-${tenant}`;
}

/** The whole state of a running loop, as continue-as-new would carry it: what adopting a legacy loop takes over. */
export const getImprovementStateQuery = defineQuery<ImprovementState>('getImprovementState');

/** Why an operator's action is refused (identity or reason), or undefined. */
export function operatorProblem(
  input: { operator?: unknown; reason?: unknown },
  approvers: string[],
): string | undefined {
  if (typeof input.operator !== 'string' || input.operator.trim() === '') return 'the operator is missing';
  if (!approvers.includes(input.operator))
    return `operator ${input.operator} is not on the approvers allowlist (RAGLINE_APPROVERS)`;
  if (typeof input.reason !== 'string' || input.reason.trim() === '') return 'a reason is required';
  if (input.reason.length > MAX_REASON_CHARS)
    return `the reason is ${input.reason.length} characters; at most ${MAX_REASON_CHARS} are accepted`;
  return undefined;
}

/** Why a decision on a proposal is refused, or undefined. `now` is the workflow's clock. */
export function decisionProblem(
  state: Pick<ImprovementState, 'proposals' | 'current' | 'settings'>,
  input: DecideProposalInput,
  now: number,
): string | undefined {
  const operator = operatorProblem(input, state.settings.approvers);
  if (operator) return operator;
  const proposal = state.proposals.find((p) => p.id === input.proposalId);
  if (!proposal) return `unknown proposal ${String(input.proposalId)}`;
  if (proposal.status === 'expired' || (proposal.status === 'pending' && now >= Date.parse(proposal.expiresAt)))
    return `proposal ${proposal.id} expired at ${proposal.expiresAt}`;
  if (proposal.status !== 'pending') return `proposal ${proposal.id} was already ${proposal.status}`;
  return undefined;
}
