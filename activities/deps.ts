import type { Cache } from '../lib/cache/cache.js';
import type { CacheTtls } from '../lib/cache/keys.js';
import type { ResultCache } from '../lib/cache/result-cache.js';
import type { AnswerGenerator, ChunkStore } from '../lib/domain.js';
import type { Breakers } from '../lib/resilience/breakers.js';
import type { Analyzer } from '../lib/retrieval/analyzer.js';
import type { TokenChannel } from '../lib/stream/token-channel.js';
import type { Logger } from '../lib/telemetry/logger.js';
import type { Metrics } from '../lib/telemetry/metrics.js';
import type { EvaluationDeps } from './evaluation.js';
import type { ImprovementDeps } from './improvement.js';
import type { ReindexDeps } from './reindex.js';

/** What ragline's activities need, injected by the composition root (workers/) or by a test. */
export interface ActivityDeps {
  store: ChunkStore;
  cache: Cache;
  /** Exact and near-duplicate answers over `cache`. */
  resultCache: ResultCache;
  /** The configured generator: an LLM, or the extractive one. */
  generator: AnswerGenerator;
  /** Always available; the fallback when the configured generator fails. */
  extractive: AnswerGenerator;
  analyzer: Analyzer;
  metrics: Metrics;
  logger: Logger;
  settings: ActivitySettings;
  /** Evaluation metrics and webhook; a test that leaves it out gets metrics on a private registry and no webhook. */
  evaluation?: EvaluationDeps;
  /** The query log and the per-tenant parameter store (versioned by the improvement loop). */
  improvement: ImprovementDeps;
  /** Where a streamed query's answer tokens are published while it is generated; unset, nothing streams. */
  tokens?: TokenChannel;
  /** This worker's breakers (the adapters above already go through them); unset with RAGLINE_BREAKERS=false. */
  breakers?: Breakers;
  /** Background re-embedding over the unguarded store; unset, `store` is used (refused unless it can re-embed). */
  reindex?: ReindexDeps;
}

export interface ActivitySettings {
  topK: number;
  maxQueryChars: number;
  chunkChars: number;
  ingestBatch: number;
  /** Where ingestion runs keep their file lists (`<RAGLINE_DATA_DIR>/ingest`). */
  ingestDir: string;
  /** Largest Markdown or text file, and largest JSONL line, ingested. */
  maxDocumentBytes: number;
  ttls: CacheTtls;
  /** How long the last good answer to a question is kept for the store-down rung, in ms. */
  staleTtlMs?: number;
  /** Set when queries are redacted (RAGLINE_LOG_REDACT_QUERIES): the key of the hash logged instead of the question. */
  redactKey?: string;
  /** How long a query waits for an identical one already computing elsewhere before computing itself. */
  stampedeWaitMs?: number;
  /** `answerSettingsHash(config)`: cached answers are kept apart by every setting that changes them. */
  answerSettings?: string;
}
