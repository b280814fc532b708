/**
 * Input, output and pure helpers of the query workflow. No runtime dependencies, so clients import this module
 * without pulling in a worker.
 */
import type { TokenUsage } from '../lib/domain.js';

export interface QueryOptions {
  /** Chunks to retrieve (1–20). @default RAGLINE_TOP_K */
  topK?: number;
  /** Skip the result and semantic caches for this query (the answer is still written back). @default false */
  bypassCache?: boolean;
  /** Time the whole query may take before falling back, in ms. @default 60000 */
  deadlineMs?: number;
}

export interface AnswerQueryInput {
  query: string;
  tenant?: string;
  userId?: string;
  options?: QueryOptions;
}

export type QualityTier = 'excellent' | 'good' | 'fair' | 'poor';

export interface Source {
  docId: string;
  chunkId: string;
  title: string;
  snippet: string;
  score: number;
  /** The `[n]` marker the answer uses for this source. */
  n: number;
}

export type FallbackReason = 'retrieval-unavailable' | 'generation-failed' | 'generation-rejected';

export type CacheOutcome = 'hit' | 'miss' | 'bypass' | 'error';

export interface CacheReport {
  result: CacheOutcome;
  semantic?: CacheOutcome | 'refused';
  llm?: 'hit' | 'miss';
}

export interface AnswerQueryResult {
  queryId: string;
  tenant: string;
  answer: string;
  sources: Source[];
  qualityScore: number;
  qualityTier: QualityTier;
  cache: CacheReport;
  degraded: boolean;
  fallbackReason?: FallbackReason;
  /** Detail of the failure behind a fallback, for operators. */
  fallbackDetail?: string;
  /** `extractive` or the LLM model that wrote the answer. */
  model: string;
  usage?: TokenUsage;
  /** The `n` of every source the answer cites, ascending. */
  citations?: number[];
  /** Set when the answer cites no valid source. */
  uncited?: boolean;
  corpusVersion?: number;
  timingsMs: { total: number; cache?: number; retrieval?: number; generation?: number };
}

/** The seed's cut-offs: excellent ≥ 0.8, good ≥ 0.6, fair ≥ 0.4, else poor. */
export function qualityTierOf(score: number): QualityTier {
  if (score >= 0.8) return 'excellent';
  if (score >= 0.6) return 'good';
  if (score >= 0.4) return 'fair';
  return 'poor';
}

export const DEFAULT_TENANT = 'default';
export const DEFAULT_DEADLINE_MS = 60_000;
export const MAX_TOP_K = 20;
export { TENANT_PATTERN } from '../lib/tenant.js';
