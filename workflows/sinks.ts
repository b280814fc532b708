import { proxySinks, type Sinks } from '@temporalio/workflow';
import type { DegradationRung, FallbackReason, QualityTier } from './answer-query-types.js';

export interface QueryOutcome {
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
 * Query metrics leave the workflow through a sink: it costs no activity, and the worker calls it only on first
 * execution, never during replay, so a query is counted once.
 */
export interface RaglineSinks extends Sinks {
  queryMetrics: { answered(outcome: QueryOutcome): void };
}

export const { queryMetrics } = proxySinks<RaglineSinks>();
