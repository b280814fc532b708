import { proxySinks, type Sinks } from '@temporalio/workflow';
import type { CacheReport, DegradationRung, FallbackReason, QualityTier } from './query.js';

export interface QueryOutcome {
  /** The workflow id; with the fields below it makes the query-log record (optional: older workers sent none). */
  queryId?: string;
  /** The question as asked; the worker normalises it before logging. */
  query?: string;
  cache?: CacheReport;
  /** Document ids of the sources, best first. */
  sourceDocIds?: string[];
  degraded?: boolean;
  tenant: string;
  cacheHit: boolean;
  qualityTier: QualityTier;
  qualityScore: number;
  path: 'hit' | 'miss' | 'degraded';
  fallbackReason?: FallbackReason;
  /** Every reason on the answer; histories from before the ladder carry only `fallbackReason`. */
  degradedReasons?: FallbackReason[];
  rung?: DegradationRung;
}

/**
 * Query metrics and the query-log record leave the workflow through a sink: it costs no activity (a cache hit stays
 * one local activity), and the worker calls it only on first execution, never during replay, so a query is counted
 * and logged once.
 */
export interface RaglineSinks extends Sinks {
  queryMetrics: { answered(outcome: QueryOutcome): void };
}

export const { queryMetrics } = proxySinks<RaglineSinks>();
