import { LRUCache } from 'lru-cache';
import type { Counter } from 'prom-client';
import type { Config } from '../config.js';
import type { Logger } from '../telemetry/logger.js';
import type { Cache } from './cache.js';
import type { CacheMetrics } from './cache-metrics.js';
import { normalizeQuery, semanticBucketKey, type ResultScope } from './keys.js';
import {
  analyzeQuestion,
  cosineSimilarity,
  guardRefusal,
  lexicalSimilarity,
  type QuestionAnalysis,
  type RefusalReason,
} from './semantic-text.js';

/** Turns a question into a dense vector; supply a cached one (see keys.embeddingKey), lookups call it per query. */
export type EmbedFn = (text: string) => Promise<number[]>;

export interface SemanticCacheOptions {
  cache: Cache;
  /** Similarity a near-duplicate must reach (RAGLINE_SEMANTIC_THRESHOLD). @default 0.9 */
  threshold?: number;
  /**
   * Cosine similarity a near-duplicate must reach when both questions have embeddings
   * (RAGLINE_SEMANTIC_DENSE_THRESHOLD). Dense similarities of short questions run high, so it is stricter.
   * @default threshold
   */
  denseThreshold?: number;
  /** Lifetime of a bucket, renewed on every write; the result TTL. */
  ttlMs: number;
  /**
   * Most recent questions kept per bucket; every lookup reads the whole bucket. Lexical entries are ~100 bytes; with
   * an embedder each carries its vector (~8 KB as base64 float32 at 1536 dimensions), so dense buckets keep 100.
   * @default 100 with `embed`, 500 without
   */
  maxEntries?: number;
  /** Dense similarity instead of the lexical one when set; the guard applies either way. */
  embed?: EmbedFn;
  metrics?: Pick<CacheMetrics, 'semanticHits' | 'semanticRefusals'>;
  /** `rag_cache_requests_total`, to count the semantic level's hits and misses. */
  requests?: Pick<Counter<'level' | 'outcome'>, 'inc'>;
  logger?: Logger;
}

/** A recent question of one bucket; `e` is its dense vector as base64 float32, when an embedder is configured. */
interface BucketEntry {
  q: string;
  k: string;
  e?: string;
}

interface Bucket {
  entries: BucketEntry[];
}

export interface SemanticMatch<T> {
  value: T;
  /** Key of the result served, for the caller's report. */
  resultKey: string;
  /** The earlier question whose answer is served. */
  question: string;
  similarity: number;
}

// Every lookup reads and decodes the whole bucket: ~50 KB lexical, ~800 KB dense at 1536 dimensions.
const LEXICAL_BUCKET_ENTRIES = 500;
const DENSE_BUCKET_ENTRIES = 100;

// Candidates tried per lookup: beyond a few, a refused or expired best match means the bucket has nothing better.
const MAX_CANDIDATES = 3;

const encodeVector = (vector: number[]): string => Buffer.from(new Float32Array(vector).buffer).toString('base64');
const decodeVector = (encoded: string): Float32Array => {
  const bytes = Buffer.from(encoded, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.byteLength / 4));
};

/**
 * Serves a cached answer to a near-duplicate of an earlier question, within one tenant, corpus version and
 * parameter set (the bucket key carries them, as result keys do). Each bucket is one cache entry listing recent
 * questions and the result keys of their answers, so it works on any Cache. Concurrent writers to one bucket may
 * lose each other's newest entry: that costs a future near-duplicate hit, never a wrong answer.
 */
export class SemanticCache {
  private readonly cache: Cache;
  private readonly threshold: number;
  private readonly denseThreshold: number;
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly embed: EmbedFn | undefined;
  private readonly metrics: SemanticCacheOptions['metrics'];
  private readonly requests: SemanticCacheOptions['requests'];
  private readonly logger: Logger | undefined;
  // Buckets hold questions, not analyses, so the analyser can change without a format bump; analyses are memoised.
  private readonly analyses = new LRUCache<string, QuestionAnalysis>({ max: 5000 });

  constructor(options: SemanticCacheOptions) {
    this.cache = options.cache;
    this.threshold = options.threshold ?? 0.9;
    this.denseThreshold = options.denseThreshold ?? this.threshold;
    this.ttlMs = options.ttlMs;
    this.maxEntries = options.maxEntries ?? (options.embed ? DENSE_BUCKET_ENTRIES : LEXICAL_BUCKET_ENTRIES);
    this.embed = options.embed;
    this.metrics = options.metrics;
    this.requests = options.requests;
    this.logger = options.logger;
  }

  /** The cached answer of the most similar earlier question that passes the threshold and the guard. */
  async get<T>(scope: ResultScope, question: string): Promise<SemanticMatch<T> | undefined> {
    const match = await this.find<T>(scope, question);
    this.requests?.inc({ level: 'semantic', outcome: match ? 'hit' : 'miss' });
    if (match) this.metrics?.semanticHits.inc();
    return match;
  }

  /** Records that `question` was answered by the result stored under `resultKey`. Never throws. */
  async remember(scope: ResultScope, question: string, resultKey: string): Promise<void> {
    try {
      const entry: BucketEntry = { q: question, k: resultKey };
      if (this.embed) entry.e = encodeVector(await this.embed(question));
      const key = semanticBucketKey(scope);
      const normalized = normalizeQuery(question);
      const bucket = await this.readBucket(key);
      const entries = bucket.entries.filter((e) => normalizeQuery(e.q) !== normalized);
      entries.push(entry);
      await this.cache.set<Bucket>(key, { entries: entries.slice(-this.maxEntries) }, { ttlMs: this.ttlMs });
    } catch (error) {
      this.logger?.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'semantic cache write dropped',
      );
    }
  }

  private async find<T>(scope: ResultScope, question: string): Promise<SemanticMatch<T> | undefined> {
    const bucket = await this.readBucket(semanticBucketKey(scope));
    if (bucket.entries.length === 0) return undefined;
    const query = this.analyze(question);
    let queryVector: number[] | undefined;
    if (this.embed) {
      try {
        queryVector = await this.embed(question);
      } catch (error) {
        this.logger?.warn({ err: error instanceof Error ? error.message : String(error) }, 'semantic lookup skipped');
        return undefined;
      }
    }
    const scored = bucket.entries
      .map((entry) => ({ entry, similarity: this.similarity(query, queryVector, entry) }))
      .filter((c) => c.similarity >= (queryVector && c.entry.e ? this.denseThreshold : this.threshold))
      .sort((a, b) => b.similarity - a.similarity)
      .slice(0, MAX_CANDIDATES);
    for (const { entry, similarity } of scored) {
      const refusal = guardRefusal(query, this.analyze(entry.q));
      if (refusal) {
        this.refused(refusal);
        continue;
      }
      const value = await this.cache.get<T>(entry.k);
      if (value !== undefined) return { value, resultKey: entry.k, question: entry.q, similarity };
    }
    return undefined;
  }

  private similarity(query: QuestionAnalysis, queryVector: number[] | undefined, entry: BucketEntry): number {
    if (queryVector && entry.e) return cosineSimilarity(queryVector, decodeVector(entry.e));
    // Entries written before an embedder was configured, or any entry without one, compare lexically.
    return lexicalSimilarity(query, this.analyze(entry.q));
  }

  private refused(reason: RefusalReason): void {
    this.metrics?.semanticRefusals.inc({ reason });
  }

  private analyze(question: string): QuestionAnalysis {
    let analysis = this.analyses.get(question);
    if (!analysis) this.analyses.set(question, (analysis = analyzeQuestion(question)));
    return analysis;
  }

  private async readBucket(key: string): Promise<Bucket> {
    const bucket = await this.cache.get<Bucket>(key);
    return bucket && Array.isArray(bucket.entries) ? bucket : { entries: [] };
  }
}

/** The semantic cache the configuration asks for, or undefined when RAGLINE_SEMANTIC_CACHE is off. */
export function createSemanticCache(
  config: Config,
  cache: Cache,
  deps: Omit<SemanticCacheOptions, 'cache' | 'threshold' | 'denseThreshold' | 'ttlMs'> = {},
): SemanticCache | undefined {
  if (!config.RAGLINE_SEMANTIC_CACHE) return undefined;
  return new SemanticCache({
    ...deps,
    cache,
    threshold: config.RAGLINE_SEMANTIC_THRESHOLD,
    denseThreshold: config.RAGLINE_SEMANTIC_DENSE_THRESHOLD,
    ttlMs: config.RAGLINE_CACHE_TTL_RESULT_SECONDS * 1000,
  });
}
