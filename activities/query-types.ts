import type { ResultScope } from '../lib/cache/keys.js';
import type { TokenUsage } from '../lib/domain.js';
import type { Dependency } from '../lib/resilience/breakers.js';
import type { AnswerQueryResult, CacheReport, FallbackReason } from '../contracts/query.js';

// The inputs and results of the query activities (activities/query.ts), apart so the query workflow reads its
// activities' types from a module with no runtime dependencies.

/** A cached answer: the parts of a result that do not depend on who asked or when. */
export type CachedAnswer = Pick<
  AnswerQueryResult,
  'answer' | 'sources' | 'qualityScore' | 'model' | 'citations' | 'uncited' | 'corpusVersion'
>;

/** The last good answer to a question, whatever the corpus version: the store-down rung. */
export type StaleLookup = { status: 'hit'; answer: CachedAnswer; cachedAt: string } | { status: 'miss' };

/**
 * `refused` lists the dependencies whose breaker in this worker would refuse a call right now (absent when none), so
 * the workflow takes their fallback without scheduling an activity only to see it refused. `unavailable`: the store's
 * breaker refused the corpus version the cache key needs, so no current answer could be looked up; `stale` is the
 * last good answer the store-down rung serves, read in the same step (absent when it could not be read).
 */
export type LookupResult =
  | { status: 'hit'; answer: CachedAnswer; cache: CacheReport; tookMs: number }
  | {
      status: 'miss';
      key: string;
      scope: ResultScope;
      corpusVersion: number;
      cache: CacheReport;
      tookMs: number;
      refused?: Dependency[];
    }
  | { status: 'unavailable'; refused: Dependency[]; cache: CacheReport; tookMs: number; stale?: StaleLookup };

export interface RetrievedHit {
  chunkId: string;
  docId: string;
  title: string;
  snippet: string;
  score: number;
}

export interface RetrieveResult {
  hits: RetrievedHit[];
  reason?: string;
  /** Rungs retrieval stepped down by itself, such as `lexical-only` when the embedder is down. */
  degradedReasons?: FallbackReason[];
  /** Set when the dense leg was configured but not used: the hits are lexical only (see SearchResponse). */
  retrievalDegraded?: 'embedder-unavailable' | 'embedding-mismatch';
  corpusVersion: number;
  tookMs: number;
}

export interface GenerateInput {
  query: string;
  tenant: string;
  /** The result key of a cache miss: identical queries in flight at once share one generation under it. */
  flightKey?: string;
  /** Retrieved chunk ids, best first: the generator loads their text itself, so histories stay small. */
  hits: Array<{ chunkId: string; score: number }>;
  reason?: string;
  /** Publish the answer's tokens on the query's stream channel as they are written (`options.stream`). */
  stream?: boolean;
  /**
   * Set on the extractive fallback when the workflow skipped the generation activity because the LLM's breaker was
   * refusing: the refusal is counted here, as the skipped call would have counted it.
   */
  circuitOpen?: boolean;
}

export interface GenerateResult {
  answer: string;
  citations: number[];
  model: string;
  qualityScore: number;
  usage?: TokenUsage;
  uncited?: boolean;
  cached?: boolean;
  tookMs: number;
}
