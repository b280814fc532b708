import { continueAsNew, setHandler, workflowInfo } from '@temporalio/workflow';
import { aggregateScores } from '../lib/eval/scores.js';
import { answerAll, evalActivities as activities, safeId } from './evaluation-steps.js';
import { EvaluationLoop } from './evaluation-loop.js';
import {
  DEFAULT_EVAL_K,
  getEvalProgressQuery,
  type EvaluateOnceInput,
  type EvaluateOnceResult,
  type EvaluationInput,
} from '../contracts/evaluation.js';

/**
 * Runs for months: every interval it samples a batch of the evaluation set, answers each question through the real
 * query workflow with the caches bypassed, scores the answers against the ground truth, keeps a rolling baseline
 * and a bounded history, raises and resolves alerts, and continues as new (state intact) before its history grows
 * large. One per tenant and set: `eval-<tenant>-<set>`. Its state and handlers live in `EvaluationLoop`.
 */
export async function evaluationWorkflow(input: EvaluationInput): Promise<void> {
  const loop = new EvaluationLoop(input);
  loop.registerHandlers();
  await loop.runBatches();
  const state = await loop.handOver();
  await continueAsNew<typeof evaluationWorkflow>({ ...input, state });
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
