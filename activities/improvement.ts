import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ChunkStore } from '../lib/domain.js';
import { ErrorType, RaglineError } from '../lib/errors.js';
import { loadEvalSet } from '../lib/eval/dataset.js';
import { analyzeQueryLog, type LogAnalysis } from '../lib/improve/analysis.js';
import type { AuditEntry, MeasuredEffect, ParamStore } from '../lib/improve/param-store.js';
import { candidateParams, paramsProblem, type ParamVersion, type RetrievalParams } from '../lib/improve/params.js';
import type { QueryLogWriter } from '../lib/improve/query-log.js';
import { beatsNoise, compareScores, evaluateParams } from '../lib/improve/shadow.js';
import type { Analyzer } from '../lib/retrieval/analyzer.js';
import { feedbackProblem } from '../lib/improve/feedback.js';
import { atBoundary } from './failures.js';

export interface ImprovementDeps {
  queryLog: QueryLogWriter;
  params: ParamStore;
  store: ChunkStore;
  analyzer: Analyzer;
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
}

/** The improvement workflow's hands: read the query log, evaluate parameter sets, write versions, record feedback. */
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
          window.queries.map((q) => q.question),
        ),
      });
    });
  },

  async shadowEvaluateParams(input: ShadowEvaluationInput): Promise<ShadowEvaluationResult> {
    return atBoundary(async () => {
      const set = await loadEvalSet(input.evalSet);
      const current = await deps.params.current(input.tenant);
      const candidates = input.candidates ?? candidateParams(current.params);
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
      const done = (await deps.params.history(input.tenant)).find((e) => e.changeId === input.changeId);
      if (done) return done;
      const current = await deps.params.current(input.tenant);
      const params = { ...current.params, ...input.params };
      const problem = paramsProblem(params as unknown as Record<string, unknown>);
      if (problem)
        throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
      return deps.params.apply(input.tenant, {
        params,
        actor: input.actor,
        action: input.action,
        reason: input.reason,
        effect: input.effect,
        proposalId: input.proposalId,
        changeId: input.changeId,
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
      const done = (await deps.params.history(input.tenant)).find((e) => e.changeId === input.changeId);
      if (done) return done;
      return deps.params.rollback(input.tenant, input.actor, input.reason, input.changeId);
    });
  },

  /** Joins feedback to a logged query; an id the log does not hold is refused. */
  async recordFeedback(input: {
    queryId: string;
    score: number;
    comment?: string;
    tenant?: string;
  }): Promise<{ queryId: string; tenant: string }> {
    return atBoundary(async () => {
      const problem = feedbackProblem(input);
      if (problem)
        throw ApplicationFailure.create({ type: ErrorType.InvalidInput, message: problem, nonRetryable: true });
      // A query answered moments ago may still sit in this worker's write buffer.
      await deps.queryLog.flush();
      const found = await deps.queryLog.store.find(input.queryId);
      if (!found || (input.tenant !== undefined && found.tenant !== input.tenant))
        throw new RaglineError(ErrorType.NotFound, `no logged query with id ${input.queryId}`);
      await deps.queryLog.store.addFeedback({
        queryId: input.queryId,
        tenant: found.tenant,
        at: new Date().toISOString(),
        score: input.score,
        comment: input.comment,
      });
      return { queryId: input.queryId, tenant: found.tenant };
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
