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
  /** Time the whole query may take, in ms; the fallback's own small budget comes out of it. @default 10000 */
  deadlineMs?: number;
  /**
   * Publish the answer's tokens on the query's stream channel while it is generated (set by `askStream`; the
   * result is the same either way). @default false
   */
  stream?: boolean;
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

/**
 * Why an answer is degraded: a stable code callers may branch on. The ladder, best rung first:
 * hybrid → `lexical-only` (embedder down) → `stale-cache` (store down: the last good answer to the same question)
 * → `generation-failed` / `generation-rejected` / `deadline` (extractive answer from the retrieved documents)
 * → `retrieval-unavailable` (store down and nothing cached: a clear message).
 */
export type FallbackReason =
  'lexical-only' | 'stale-cache' | 'retrieval-unavailable' | 'generation-failed' | 'generation-rejected' | 'deadline';

/** The rung of the degradation ladder an answer came from. */
export type DegradationRung = 'full' | 'lexical-only' | 'stale-cache' | 'extractive' | 'message';

/** Short messages for callers, one per reason; what actually failed goes to logs and traces, never to callers. */
export const FALLBACK_MESSAGES: Record<FallbackReason, string> = {
  'lexical-only': 'Semantic search is unavailable; the answer used keyword search only.',
  'stale-cache': 'Document search is unavailable; this is an earlier answer to the same question.',
  'retrieval-unavailable': 'Document search is unavailable.',
  'generation-failed': 'The language model is unavailable; the answer quotes the documents.',
  'generation-rejected': 'The language model declined the request; the answer quotes the documents.',
  deadline: 'The query ran out of time for the language model; the answer quotes the documents.',
};

export type CacheOutcome = 'hit' | 'miss' | 'bypass' | 'error';

export interface CacheReport {
  result: CacheOutcome;
  semantic?: CacheOutcome | 'refused';
  llm?: 'hit' | 'miss';
  /** The last-good-answer lookup, made only when retrieval failed. */
  stale?: 'hit' | 'miss' | 'error';
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
  /** Set when hybrid retrieval fell back to lexical only (the embedder was down, or the index holds another model's vectors). */
  retrievalDegraded?: 'embedder-unavailable' | 'embedding-mismatch';
  /** The main reason of a degraded answer (the lowest rung reached). */
  fallbackReason?: FallbackReason;
  /** {@link FALLBACK_MESSAGES} of `fallbackReason`: short and stable, never an internal error or address. */
  fallbackDetail?: string;
  /** Every reason this answer is degraded, in the order they happened (e.g. lexical-only, then generation-failed). */
  degradedReasons?: FallbackReason[];
  /** The ladder rung that produced the answer; `full` when nothing degraded. */
  rung?: DegradationRung;
  /** Set on a `stale-cache` answer: when the answer being served again was first computed (ISO 8601). */
  staleSince?: string;
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
export const DEFAULT_DEADLINE_MS = 10_000;
/** Start-to-close timeout of the query's local activities (cache lookup, cache write, extractive answer). */
export const LOCAL_STEP_TIMEOUT_MS = 2000;
/** Kept back from the deadline for the fallback after a failed step, so the fallback still fits in it. */
export const FALLBACK_BUDGET_MS = 2000;
/** Shortest deadline that leaves room for the cache lookup and a fallback. */
export const MIN_DEADLINE_MS = LOCAL_STEP_TIMEOUT_MS + FALLBACK_BUDGET_MS;
export const MAX_TOP_K = 20;
export { TENANT_PATTERN } from '../lib/tenant.js';
