/**
 * Input, output and pure helpers of the query workflow. No runtime dependencies, so clients import this module
 * without pulling in a worker.
 */
import type { TokenUsage } from '../lib/domain.js';
import { tenantProblem } from '../lib/tenant.js';

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
export { FALLBACK_BUDGET_MS, LOCAL_STEP_TIMEOUT_MS } from '../lib/deadlines.js';
export const MAX_TOP_K = 20;
export { TENANT_PATTERN } from '../lib/tenant.js';

// Validation of query input, shared by the client (to fail before starting a workflow) and the workflow (which
// must not trust its input). Pure and deterministic.

export interface QueryLimits {
  maxQueryChars: number;
}

export const DEFAULT_QUERY_LIMITS: QueryLimits = { maxQueryChars: 4000 };

// C0 and C1 control characters except tab, line feed and carriage return; and lone surrogates, which is what
// invalid UTF-8 becomes after decoding with replacement disabled or in JSON built by hand.
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Returns the reason the input is invalid, or undefined. */
export function queryInputProblem(
  input: AnswerQueryInput,
  limits: QueryLimits = DEFAULT_QUERY_LIMITS,
): string | undefined {
  if (typeof input?.query !== 'string') return 'query must be a string';
  const query = input.query;
  if (query.trim() === '') return 'query is empty';
  if (query.length > limits.maxQueryChars)
    return `query is ${query.length} characters long; the maximum is ${limits.maxQueryChars}`;
  if (CONTROL_CHARS.test(query)) return 'query contains control characters';
  if (LONE_SURROGATE.test(query) || query.includes('\uFFFD')) return 'query is not valid UTF-8 text';
  if (input.tenant !== undefined && tenantProblem(input.tenant)) return tenantProblem(input.tenant);
  const topK = input.options?.topK;
  if (topK !== undefined && (!Number.isInteger(topK) || topK < 1 || topK > MAX_TOP_K))
    return `options.topK must be an integer from 1 to ${MAX_TOP_K}`;
  const deadline = input.options?.deadlineMs;
  if (deadline !== undefined && (!Number.isFinite(deadline) || deadline < 1000))
    return 'options.deadlineMs must be at least 1000';
  return undefined;
}
