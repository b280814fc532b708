import type OpenAI from 'openai';
import pLimit from 'p-limit';
import type { Config } from '../config.js';
import { ErrorType, RaglineError } from '../errors.js';
import { toLlmError } from '../openai/errors.js';
import { createOpenAIClient } from '../openai/client.js';
import {
  describeMode,
  embedThroughCache,
  subBatches,
  type EmbedOptions,
  type Embedder,
  type EmbeddingCache,
  type EmbeddingMode,
  type EmbeddingPurpose,
} from './embedder.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIEmbedderOptions {
  model: string;
  dimensions: number;
  apiKey?: string;
  baseURL?: string;
  /** What a request of one short text may take; bigger requests get more (`timeoutPer1kCharsMs`). */
  timeoutMs: number;
  /** Most texts per request. @default 32 */
  batchSize?: number;
  /** Most characters per request (prefixes included); a longer single text goes alone. @default 16000 */
  batchChars?: number;
  /** Requests in flight at once for one `embed` call. @default 2 */
  concurrency?: number;
  /**
   * Extra time per 1,000 characters of a request and of this call's other requests that may be ahead of it in the
   * server's queue. @default 4000
   */
  timeoutPer1kCharsMs?: number;
  /** How questions are requested (asymmetric models). @default the plain model */
  queryMode?: EmbeddingMode;
  /** How documents are requested (asymmetric models). @default the plain model */
  documentMode?: EmbeddingMode;
  /**
   * Send `dimensions` in the request: OpenAI's text-embedding-3 models shorten vectors with it, while most
   * self-hosted servers ignore or reject it. @default true
   */
  sendDimensions?: boolean;
}

/** What each request runs through: the embedder's circuit breaker, counting a request over its timeout as failed. */
export interface EmbeddingRequestGuard {
  run<T>(fn: () => Promise<T>, options: { timeoutMs?: number }): Promise<T>;
}

export interface OpenAIEmbedderDeps {
  cache?: EmbeddingCache;
  /**
   * Every request, not every call, goes through it: an embedder that is down opens the breaker, while one that is
   * merely slow on a big ingestion batch answers each right-sized request in time and does not.
   */
  guard?: EmbeddingRequestGuard;
  /** For tests: a preconfigured client. */
  client?: OpenAI;
}

/**
 * Embeddings from any OpenAI-compatible endpoint. One call may carry thousands of texts (an ingestion batch): they
 * are sent as requests bounded by count and characters, a few in flight, each with a timeout that fits its size,
 * and every answered request is cached at once, so a retry after a failure asks only for what is missing. The SDK
 * never retries (maxRetries 0): Temporal's retry policy is the one retry loop, and a rate limit surfaces as
 * RaglineError(RateLimited) carrying the Retry-After so the activity boundary can set `nextRetryDelay`.
 */
export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  readonly identity: string;
  private readonly client: OpenAI;
  private readonly baseURL: string;
  private readonly batchSize: number;
  private readonly batchChars: number;
  private readonly concurrency: number;
  private readonly timeoutPer1kCharsMs: number;

  constructor(
    private readonly options: OpenAIEmbedderOptions,
    private readonly deps: OpenAIEmbedderDeps = {},
  ) {
    this.model = options.model;
    this.dimensions = options.dimensions;
    this.batchSize = options.batchSize ?? 32;
    this.batchChars = options.batchChars ?? 16_000;
    this.concurrency = options.concurrency ?? 2;
    this.timeoutPer1kCharsMs = options.timeoutPer1kCharsMs ?? 4000;
    this.identity = `${describeMode(options.model, options.documentMode ?? {})}|${options.dimensions}`;
    this.baseURL = (options.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, '');
    this.client =
      deps.client ??
      createOpenAIClient({ apiKey: options.apiKey, baseURL: this.baseURL, timeoutMs: options.timeoutMs });
  }

  async embed(
    texts: string[],
    purpose: EmbeddingPurpose = 'document',
    options: EmbedOptions = {},
  ): Promise<number[][]> {
    if (texts.length === 0) return [];
    const mode = (purpose === 'query' ? this.options.queryMode : this.options.documentMode) ?? {};
    return embedThroughCache(
      texts,
      { model: describeMode(this.model, mode), dimensions: this.dimensions },
      this.deps.cache,
      (missing, keep) => this.requestAll(missing, mode, keep, options.signal),
      options.onProgress,
    );
  }

  /**
   * What a request of `chars` characters may take: the base, plus time for its own characters and for the
   * `ahead` characters of this call's other requests in flight, since a server that works one request at a time
   * answers this one after them. A query (one short text) gets little more than the base.
   */
  timeoutFor(chars: number, ahead = 0): number {
    return Math.round(this.options.timeoutMs + (this.timeoutPer1kCharsMs * (chars + ahead)) / 1000);
  }

  /**
   * Sends `texts` as right-sized requests, `concurrency` at a time. After the first failure no new request starts;
   * those in flight finish and are kept, then the failure is thrown.
   */
  private async requestAll(
    texts: string[],
    mode: EmbeddingMode,
    keep: (part: string[], vectors: number[][]) => Promise<void>,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const limit = pLimit(this.concurrency);
    const prefix = mode.prefix?.length ?? 0;
    const parts = subBatches(texts, this.batchSize, this.batchChars, prefix);
    const size = (part: string[]) => part.reduce((sum, text) => sum + text.length + prefix, 0);
    // The largest requests that may be in the server's queue ahead of any one of ours.
    const sizes = parts.map(size).sort((a, b) => b - a);
    const ahead = sizes.slice(0, Math.min(this.concurrency, parts.length) - 1).reduce((sum, n) => sum + n, 0);
    let failure: { error: unknown } | undefined;
    await Promise.all(
      parts.map((part) =>
        limit(async () => {
          if (failure || signal?.aborted) return;
          try {
            await keep(part, await this.requestFitting(part, mode, ahead, signal));
          } catch (error) {
            failure ??= { error };
          }
        }),
      ),
    );
    if (failure) throw failure.error;
    signal?.throwIfAborted();
  }

  /** One request; a server that says it is too large (413, or a context-length 400) gets two halves instead. */
  private async requestFitting(
    texts: string[],
    mode: EmbeddingMode,
    ahead: number,
    signal?: AbortSignal,
  ): Promise<number[][]> {
    try {
      return await this.guarded(texts, mode, ahead, signal);
    } catch (error) {
      if (!(error instanceof RaglineError && error.type === ErrorType.ContextLength) || texts.length === 1) throw error;
      const half = Math.ceil(texts.length / 2);
      const first = await this.requestFitting(texts.slice(0, half), mode, ahead, signal);
      return [...first, ...(await this.requestFitting(texts.slice(half), mode, ahead, signal))];
    }
  }

  private guarded(texts: string[], mode: EmbeddingMode, ahead: number, signal?: AbortSignal): Promise<number[][]> {
    const chars = texts.reduce((sum, text) => sum + text.length + (mode.prefix?.length ?? 0), 0);
    const timeoutMs = this.timeoutFor(chars, ahead);
    const send = () => this.request(texts, mode, timeoutMs, signal);
    return this.deps.guard ? this.deps.guard.run(send, { timeoutMs }) : send();
  }

  private async request(
    batch: string[],
    mode: EmbeddingMode,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<number[][]> {
    const model = mode.model ?? this.model;
    const prefix = mode.prefix ?? '';
    let response: OpenAI.CreateEmbeddingResponse;
    // `input_type` is not in OpenAI's schema; the SDK passes unknown body fields through unchanged.
    const body: OpenAI.EmbeddingCreateParams & { input_type?: string } = {
      model,
      input: prefix === '' ? batch : batch.map((text) => prefix + text),
      encoding_format: 'float',
      ...(this.options.sendDimensions === false ? {} : { dimensions: this.dimensions }),
      ...(mode.inputType === undefined ? {} : { input_type: mode.inputType }),
    };
    try {
      response = await this.client.embeddings.create(body, { timeout: timeoutMs, ...(signal ? { signal } : {}) });
    } catch (error) {
      throw toLlmError(error, {
        model,
        baseURL: this.baseURL,
        apiKeySet: this.options.apiKey !== undefined,
        timeoutMs,
      });
    }
    // The API may return items out of order; `index` is authoritative.
    const ordered = [...(response.data ?? [])].sort((a, b) => a.index - b.index);
    const where = `embedding endpoint ${this.baseURL} (model ${model})`;
    if (ordered.length !== batch.length) {
      throw new RaglineError(
        ErrorType.BadResponse,
        `${where} returned ${ordered.length} vectors for ${batch.length} texts`,
      );
    }
    const wrong = ordered.find((item) => item.embedding.length !== this.dimensions);
    if (wrong) {
      throw new RaglineError(
        ErrorType.BadResponse,
        `${where} returned a vector of ${wrong.embedding.length} dimensions; expected ${this.dimensions} ` +
          `(OPENAI_EMBEDDING_DIMENSIONS)`,
      );
    }
    if (ordered.some((item) => item.embedding.some((value) => !Number.isFinite(value)))) {
      throw new RaglineError(ErrorType.BadResponse, `${where} returned a vector with NaN or infinite values`);
    }
    return ordered.map((item) => item.embedding);
  }
}

/** The configured embedder, or undefined when OPENAI_EMBEDDING_MODEL is unset (no dense retrieval). */
export function openAIEmbedderFromConfig(config: Config, deps: OpenAIEmbedderDeps = {}): OpenAIEmbedder | undefined {
  if (config.OPENAI_EMBEDDING_MODEL === undefined) return undefined;
  const mode = (model?: string, inputType?: string, prefix?: string): EmbeddingMode => ({
    ...(model === undefined ? {} : { model }),
    ...(inputType === undefined ? {} : { inputType }),
    ...(prefix === undefined || prefix === '' ? {} : { prefix }),
  });
  return new OpenAIEmbedder(
    {
      model: config.OPENAI_EMBEDDING_MODEL,
      dimensions: config.OPENAI_EMBEDDING_DIMENSIONS,
      // A local embeddings server needs no key, but the SDK refuses to start without one.
      apiKey: config.OPENAI_API_KEY ?? (config.RAGLINE_EMBEDDING_URL ? 'unused' : undefined),
      baseURL: config.RAGLINE_EMBEDDING_URL ?? config.OPENAI_BASE_URL,
      // A query's one short text must answer within what a query can wait; bigger requests get more from their size.
      timeoutMs: Math.min(config.OPENAI_TIMEOUT_MS, config.RAGLINE_QUERY_DEADLINE_MS),
      batchSize: config.RAGLINE_EMBEDDING_BATCH_SIZE,
      batchChars: config.RAGLINE_EMBEDDING_BATCH_CHARS,
      concurrency: config.RAGLINE_EMBEDDING_CONCURRENCY,
      timeoutPer1kCharsMs: config.RAGLINE_EMBEDDING_TIMEOUT_MS_PER_1K_CHARS,
      sendDimensions: config.RAGLINE_EMBEDDING_SEND_DIMENSIONS,
      queryMode: mode(
        config.RAGLINE_EMBEDDING_QUERY_MODEL,
        config.RAGLINE_EMBEDDING_QUERY_INPUT_TYPE,
        config.RAGLINE_EMBEDDING_QUERY_PREFIX,
      ),
      documentMode: mode(
        config.RAGLINE_EMBEDDING_DOCUMENT_MODEL,
        config.RAGLINE_EMBEDDING_DOCUMENT_INPUT_TYPE,
        config.RAGLINE_EMBEDDING_DOCUMENT_PREFIX,
      ),
    },
    deps,
  );
}
