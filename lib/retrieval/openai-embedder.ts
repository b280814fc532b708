import type OpenAI from 'openai';
import type { Config } from '../config.js';
import { ErrorType, RaglineError } from '../errors.js';
import { toLlmError } from '../generation/llm-errors.js';
import { createOpenAIClient } from '../generation/openai-client.js';
import { embedThroughCache, type Embedder, type EmbeddingCache } from './embedder.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';
/** OpenAI accepts up to 2,048 inputs per request; smaller batches keep one request well inside its timeout. */
const DEFAULT_BATCH_SIZE = 256;

export interface OpenAIEmbedderOptions {
  model: string;
  dimensions: number;
  apiKey?: string;
  baseURL?: string;
  timeoutMs: number;
  /** Texts per request. @default 256 */
  batchSize?: number;
}

export interface OpenAIEmbedderDeps {
  cache?: EmbeddingCache;
  /** For tests: a preconfigured client. */
  client?: OpenAI;
}

/**
 * Embeddings from any OpenAI-compatible endpoint. The SDK never retries (maxRetries 0): Temporal's retry policy
 * is the one retry loop, and a rate limit surfaces as RaglineError(RateLimited) carrying the Retry-After so the
 * activity boundary can set `nextRetryDelay`.
 */
export class OpenAIEmbedder implements Embedder {
  readonly model: string;
  readonly dimensions: number;
  private readonly client: OpenAI;
  private readonly baseURL: string;
  private readonly batchSize: number;

  constructor(
    private readonly options: OpenAIEmbedderOptions,
    private readonly deps: OpenAIEmbedderDeps = {},
  ) {
    this.model = options.model;
    this.dimensions = options.dimensions;
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.baseURL = (options.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, '');
    this.client =
      deps.client ??
      createOpenAIClient({ apiKey: options.apiKey, baseURL: this.baseURL, timeoutMs: options.timeoutMs });
  }

  async embed(texts: string[]): Promise<number[][]> {
    if (texts.length === 0) return [];
    return embedThroughCache(texts, { model: this.model, dimensions: this.dimensions }, this.deps.cache, (misses) =>
      this.request(misses),
    );
  }

  private async request(texts: string[]): Promise<number[][]> {
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += this.batchSize) {
      const batch = texts.slice(start, start + this.batchSize);
      let response: OpenAI.CreateEmbeddingResponse;
      try {
        response = await this.client.embeddings.create({
          model: this.model,
          input: batch,
          dimensions: this.dimensions,
          encoding_format: 'float',
        });
      } catch (error) {
        throw toLlmError(error, {
          model: this.model,
          baseURL: this.baseURL,
          apiKeySet: this.options.apiKey !== undefined,
          timeoutMs: this.options.timeoutMs,
        });
      }
      // The API may return items out of order; `index` is authoritative.
      const ordered = [...response.data].sort((a, b) => a.index - b.index);
      if (ordered.length !== batch.length || ordered.some((item) => item.embedding.length !== this.dimensions)) {
        throw new RaglineError(
          ErrorType.BadResponse,
          `embedding endpoint ${this.baseURL} (model ${this.model}) returned ${ordered.length} vectors of ` +
            `${ordered[0]?.embedding.length ?? 0} dimensions for ${batch.length} texts; expected ${this.dimensions}`,
        );
      }
      for (const item of ordered) vectors.push(item.embedding);
    }
    return vectors;
  }
}

/** The configured embedder, or undefined when OPENAI_EMBEDDING_MODEL is unset (no dense retrieval). */
export function openAIEmbedderFromConfig(config: Config, deps: OpenAIEmbedderDeps = {}): OpenAIEmbedder | undefined {
  if (config.OPENAI_EMBEDDING_MODEL === undefined) return undefined;
  return new OpenAIEmbedder(
    {
      model: config.OPENAI_EMBEDDING_MODEL,
      dimensions: config.OPENAI_EMBEDDING_DIMENSIONS,
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      timeoutMs: config.OPENAI_TIMEOUT_MS,
    },
    deps,
  );
}
