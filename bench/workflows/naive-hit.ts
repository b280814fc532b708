/**
 * Bench-only: ragline's query workflow on a cache hit, except that the lookup is an ordinary remote activity
 * instead of a local one. `npm run bench -- cache` measures it as `naiveHit` to show what the local activity saves:
 * a remote activity costs a schedule, a task-queue dispatch and a completion round trip through the server.
 * Everything else the hit path does (search attributes, the metrics sink) is kept so only that one choice differs.
 */
import { ApplicationFailure, proxyActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { createActivities } from '../../activities/index.js';
import { NON_RETRYABLE_ERROR_TYPES } from '../../lib/errors.js';
import { DEFAULT_TENANT, qualityTierOf, type AnswerQueryInput, type AnswerQueryResult } from '../../contracts/query.js';
import { cacheHitSearchAttribute, qualityTierSearchAttribute } from '../../contracts/search-attributes.js';
import { queryMetrics } from '../../contracts/sinks.js';

// The same timeout and retries as the query workflow's local cache lookup.
const remote = proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '2s',
  retry: { maximumAttempts: 2, initialInterval: '50ms', nonRetryableErrorTypes: NON_RETRYABLE_ERROR_TYPES },
});

/** Answers from the result cache through a remote activity; fails (non-retryable) when the cache misses. */
export async function naiveHitWorkflow(input: AnswerQueryInput): Promise<AnswerQueryResult> {
  const startedAt = Date.now();
  const tenant = input.tenant ?? DEFAULT_TENANT;
  const lookup = await remote.lookupCachedAnswer({ query: input.query, tenant, options: input.options });
  if (lookup.status !== 'hit') {
    throw ApplicationFailure.create({
      type: 'BenchCacheMiss',
      message: `naiveHit expects a cached answer, but the lookup missed (${JSON.stringify(lookup.cache)})`,
      nonRetryable: true,
    });
  }
  const qualityTier = qualityTierOf(lookup.answer.qualityScore);
  upsertSearchAttributes([
    { key: cacheHitSearchAttribute, value: true },
    { key: qualityTierSearchAttribute, value: qualityTier },
  ]);
  const total = Date.now() - startedAt;
  queryMetrics.answered({
    tenant,
    cacheHit: true,
    qualityTier,
    qualityScore: lookup.answer.qualityScore,
    path: 'hit',
  });
  return {
    queryId: workflowInfo().workflowId,
    tenant,
    ...lookup.answer,
    cache: lookup.cache,
    degraded: false,
    qualityTier,
    timingsMs: { cache: lookup.tookMs, total },
  };
}
