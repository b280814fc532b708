import { createHash } from 'node:crypto';
import { Context, log } from '@temporalio/activity';
import { WorkflowNotFoundError } from '@temporalio/client';
import { normalizeQuery } from '../lib/cache/keys.js';
import type { ChunkStore } from '../lib/domain.js';
import { loadTenantEvalSet, overlayFile } from '../lib/eval/overlay.js';
import { analyzeQueryLog, type EvalSetProposal, type LogAnalysis } from '../lib/improve/analysis.js';
import type { AuditEntry, MeasuredEffect, ParamStore } from '../lib/improve/param-store.js';
import { candidateParams, type ParamName, type ParamVersion, type RetrievalParams } from '../lib/improve/params.js';
import type { QueryLogWriter } from '../lib/improve/query-log.js';
import { beatsNoise, compareScores, evaluateParams } from '../lib/improve/shadow.js';
import type { Analyzer } from '../lib/retrieval/analyzer.js';
import {
  EVAL_PROPOSAL_BYTES,
  evaluationWorkflowId,
  getEvaluationStatusQuery,
  MAX_PROPOSED_ITEMS,
  proposedItemProblem,
  proposeEvalItemsUpdate,
  utf8Bytes,
} from '../contracts/evaluation.js';
import { LOOP_ACTOR } from '../contracts/improvement.js';
import { atBoundary } from './failures.js';

export interface ImprovementDeps {
  queryLog: QueryLogWriter;
  params: ParamStore;
  store: ChunkStore;
  analyzer: Analyzer;
  /** Parameters a shadow evaluation can move on this store (`tunedParams`). @default TUNED_PARAMS */
  tuned?: ParamName[];
  /** Where each tenant's accepted evaluation questions are kept (lib/eval/overlay.ts); they join its set. */
  evalOverlayDir?: string;
}

export interface ShadowEvaluationInput {
  tenant: string;
  evalSet: string;
  /** Defaults to the coordinate-search neighbours of the current parameters. */
  candidates?: RetrievalParams[];
}

export interface ShadowEvaluationResult {
  current: ParamVersion;
  evalSet: string;
  questions: number;
  baseline: number;
  candidates: number;
  /** The best candidate that beats the current parameters by more than the noise, if any. */
  best?: { params: RetrievalParams; effect: MeasuredEffect };
}

export interface ApplyParamsActivityInput {
  tenant: string;
  /** Merged over the tenant's current parameters. */
  params: Partial<RetrievalParams>;
  actor: string;
  action: 'apply' | 'auto-apply';
  reason: string;
  effect?: MeasuredEffect;
  proposalId?: string;
  /** Makes a retried attempt return the entry the first attempt wrote instead of writing a second one. */
  changeId: string;
  /** The version the change was measured against: refused (InvalidInput) if another is current when it is written. */
  expectedVersion?: number;
}

export interface ProposeEvalItemsActivityInput {
  tenant: string;
  /** The evaluation set path as the worker reads it; its name names the evaluation workflow (`eval-<tenant>-<set>`). */
  evalSet: string;
  proposals: EvalSetProposal[];
  /** Item ids this loop proposed before (whatever became of them): a rejected question is not proposed again. */
  alreadyProposed: string[];
  /** Makes a retried attempt's Update the same Update, which Temporal then runs once. */
  updateId: string;
}

export interface ProposeEvalItemsActivityResult {
  /** `proposed`: a new proposal is pending on the evaluation workflow; `nothing-new`: every question was known. */
  outcome: 'proposed' | 'nothing-new' | 'no-evaluation-workflow';
  workflowId: string;
  /** The evaluation workflow's proposal id. */
  proposalId?: string;
  /** Ids of the questions sent (`log-<hash of the question>`). */
  itemIds: string[];
  /** Questions left out because the set, a pending proposal or an earlier proposal of this loop already holds them. */
  skipped: number;
  /**
   * Questions the evaluation workflow would refuse (over a byte bound after normalisation, say): left out, so one of
   * them no longer makes the whole proposal refused cycle after cycle. Questions past one proposal's count or byte
   * budget are not counted here: they wait for the next cycle.
   */
  refusedIds?: string[];
}

/** Bytes of questions one proposal carries: an eighth of what the evaluation workflow keeps of all proposals. */
const PROPOSAL_BUDGET_BYTES = EVAL_PROPOSAL_BYTES.allProposals / 8;

/** An evaluation item id that depends only on the normalised question, so the same question never gets two ids. */
export function loggedItemId(question: string): string {
  return `log-${createHash('sha256').update(normalizeQuery(question)).digest('hex').slice(0, 12)}`;
}

/** The evaluation set as the tenant's evaluation sees it: the shared set and the tenant's accepted questions. */
function tenantEvalSet(deps: ImprovementDeps, tenant: string, evalSet: string) {
  const overlay = deps.evalOverlayDir === undefined ? undefined : overlayFile(deps.evalOverlayDir, tenant, evalSet);
  return loadTenantEvalSet(evalSet, overlay);
}

/** The improvement workflow's hands: read the query log, evaluate parameter sets, write versions. */
export const createImprovementActivities = (deps: ImprovementDeps) => ({
  async analyzeQueryLog(input: { tenant: string; windowMs: number }): Promise<LogAnalysis> {
    return atBoundary(async () => {
      await deps.queryLog.flush();
      const to = Date.now();
      const from = to - input.windowMs;
      const window = await deps.queryLog.store.read(input.tenant, from);
      return analyzeQueryLog(input.tenant, window, { from, to }, deps.analyzer, {
        unknownTerms: await termsMissingFromCorpus(
          deps,
          input.tenant,
          window.queries.flatMap((q) => (q.redacted ? [] : [q.question])),
        ),
      });
    });
  },

  async shadowEvaluateParams(input: ShadowEvaluationInput): Promise<ShadowEvaluationResult> {
    return atBoundary(async () => {
      const set = await tenantEvalSet(deps, input.tenant, input.evalSet);
      const current = await deps.params.current(input.tenant);
      const candidates = input.candidates ?? candidateParams(current.params, deps.tuned);
      const baselineScores = await evaluateParams(deps.store, input.tenant, set.items, current.params);
      const mean = baselineScores.reduce((a, b) => a + b, 0) / Math.max(baselineScores.length, 1);
      let best: ShadowEvaluationResult['best'];
      for (const [i, params] of candidates.entries()) {
        Context.current().heartbeat({ candidate: i });
        const comparison = compareScores(
          baselineScores,
          await evaluateParams(deps.store, input.tenant, set.items, params),
        );
        if (!beatsNoise(comparison)) continue;
        if (best && comparison.after - comparison.before <= best.effect.after - best.effect.before) continue;
        best = {
          params,
          effect: {
            metric: 'ndcg10',
            before: round(comparison.before),
            after: round(comparison.after),
            noise: round(comparison.noise),
            questions: set.items.length,
            evalSet: `${set.name}@${set.version}`,
          },
        };
      }
      return {
        current,
        evalSet: `${set.name}@${set.version}`,
        questions: set.items.length,
        baseline: round(mean),
        candidates: candidates.length,
        best,
      };
    });
  },

  /**
   * Sends well-rated real questions to the evaluation workflow's proposal path, where a person accepts or rejects
   * them. A question the set already holds (same normalised text or id), one pending there, or one this loop proposed
   * before is left out, so nothing is proposed twice.
   */
  async proposeEvalItems(input: ProposeEvalItemsActivityInput): Promise<ProposeEvalItemsActivityResult> {
    return atBoundary(async () => {
      const set = await tenantEvalSet(deps, input.tenant, input.evalSet);
      const workflowId = evaluationWorkflowId(input.tenant, set.name);
      const handle = Context.current().client.workflow.getHandle(workflowId);
      const none = { workflowId, itemIds: [], skipped: input.proposals.length };
      let pendingIds: string[];
      try {
        if ((await handle.describe()).status.name !== 'RUNNING') return { outcome: 'no-evaluation-workflow', ...none };
        const status = await handle.query(getEvaluationStatusQuery);
        pendingIds = status.pendingProposals.flatMap((p) =>
          p.items.flatMap((item) => [item.id, loggedItemId(item.question)]),
        );
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) return { outcome: 'no-evaluation-workflow', ...none };
        throw error;
      }
      const known = new Set([
        ...set.items.map((item) => item.id),
        ...set.items.map((item) => loggedItemId(item.question)),
        ...pendingIds,
        ...input.alreadyProposed,
      ]);
      const items = [];
      const refusedIds: string[] = [];
      let bytes = 0;
      for (const proposal of input.proposals) {
        const id = loggedItemId(proposal.question);
        if (known.has(id)) continue;
        known.add(id);
        const item = { id, question: proposal.question, relevant: proposal.relevant };
        const problem = proposedItemProblem(item);
        if (problem) {
          refusedIds.push(id);
          log.warn('logged question not proposed to the evaluation set', { tenant: input.tenant, itemId: id, problem });
          continue;
        }
        const size = utf8Bytes(JSON.stringify(item));
        if (items.length >= MAX_PROPOSED_ITEMS || bytes + size > PROPOSAL_BUDGET_BYTES) break;
        bytes += size;
        items.push(item);
      }
      const refused = refusedIds.length;
      if (items.length === 0)
        return { outcome: 'nothing-new', ...none, skipped: input.proposals.length - refused, refusedIds };
      const stored = await handle.executeUpdate(proposeEvalItemsUpdate, {
        updateId: input.updateId,
        args: [
          {
            source: LOOP_ACTOR,
            note: `${items.length} well-rated question(s) from the query log of tenant ${input.tenant}; relevant documents are the sources their answers cited`,
            items,
          },
        ],
      });
      return {
        outcome: 'proposed',
        workflowId,
        proposalId: stored.id,
        itemIds: items.map((item) => item.id),
        skipped: input.proposals.length - items.length - refused,
        refusedIds,
      };
    });
  },

  async getParams(input: {
    tenant: string;
    history?: number;
  }): Promise<{ current: ParamVersion; audit: AuditEntry[] }> {
    return atBoundary(async () => ({
      current: await deps.params.current(input.tenant),
      audit: (await deps.params.history(input.tenant)).slice(-(input.history ?? 20)),
    }));
  },

  async applyParams(input: ApplyParamsActivityInput): Promise<AuditEntry> {
    return atBoundary(async () => {
      // The store merges, checks and finds an earlier write of this change id atomically with its append.
      return deps.params.apply(input.tenant, {
        params: input.params,
        actor: input.actor,
        action: input.action,
        reason: input.reason,
        effect: input.effect,
        proposalId: input.proposalId,
        changeId: input.changeId,
        expectedVersion: input.expectedVersion,
      });
    });
  },

  async rollbackParams(input: {
    tenant: string;
    actor: string;
    reason: string;
    changeId: string;
  }): Promise<AuditEntry> {
    return atBoundary(async () => {
      return deps.params.rollback(input.tenant, input.actor, input.reason, input.changeId);
    });
  },
});

/** Analysed terms of these questions that match no document of the tenant: one single-word search per term. */
async function termsMissingFromCorpus(
  deps: ImprovementDeps,
  tenant: string,
  questions: string[],
): Promise<Set<string>> {
  const words = new Map<string, string>();
  for (const question of questions) {
    for (const word of question.split(/[^\p{L}\p{N}]+/u)) {
      const [term] = deps.analyzer.analyze(word);
      if (term && !words.has(term)) words.set(term, word);
    }
  }
  const missing = new Set<string>();
  for (const [term, word] of words) {
    const found = await deps.store.search(tenant, { query: word, topK: 1 });
    if (found.hits.length === 0 && found.reason !== 'no-terms') missing.add(term);
  }
  return missing;
}

const round = (value: number) => Math.round(value * 10_000) / 10_000;
