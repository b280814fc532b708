import { executeChild, proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../activities/index.js';
import type { EvalItem } from '../lib/eval/dataset.js';
import type { EvalObservation } from '../lib/eval/scores.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../lib/errors.js';
import { answerQueryWorkflow } from './answer-query.js';
import type { AnswerQueryResult } from '../contracts/query.js';
import { tenantSearchAttribute } from '../contracts/search-attributes.js';

// What both evaluation workflows do outside their own state: the activities they call, with their retry policies,
// and the child query workflow that answers each question.

type Activities = ReturnType<typeof createActivities>;

/** The evaluation set and the records: quick reads and writes, retried a few times. */
export const evalActivities = proxyActivities<Activities>({
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
export const webhook = proxyActivities<Activities>({
  startToCloseTimeout: '30s',
  scheduleToCloseTimeout: '10m',
  retry: { maximumAttempts: 8, initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '2m' },
});

/**
 * Answers each question with the real query workflow as a child, caches bypassed: evaluation measures retrieval and
 * generation, with the production retries and fallbacks, and every question is inspectable in the Temporal UI.
 */
export async function answerAll(
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

/** A question id made safe for a child workflow id. */
export function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 80);
}
