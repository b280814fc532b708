import type OpenAI from 'openai';
import type { Config } from '../config.js';
import { ErrorType, RaglineError } from '../errors.js';
import { toLlmError } from '../generation/llm-errors.js';
import { createOpenAIClient } from '../generation/openai-client.js';
import {
  describeMode,
  embedThroughCache,
  type Embedder,
  type EmbeddingCache,
  type EmbeddingMode,
  type EmbeddingPurpose,
} from './embedder.js';

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
  readonly identity: string;
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
    this.identity = `${describeMode(options.model, options.documentMode ?? {})}|${options.dimensions}`;
    this.baseURL = (options.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, '');
    this.client =
      deps.client ??
      createOpenAIClient({ apiKey: options.apiKey, baseURL: this.baseURL, timeoutMs: options.timeoutMs });
  }

  async embed(texts: string[], purpose: EmbeddingPurpose = 'document'): Promise<number[][]> {
    if (texts.length === 0) return [];
    const mode = (purpose === 'query' ? this.options.queryMode : this.options.documentMode) ?? {};
    return embedThroughCache(
      texts,
      { model: describeMode(this.model, mode), dimensions: this.dimensions },
      this.deps.cache,
      (misses) => this.request(misses, mode),
    );
  }

  private async request(texts: string[], mode: EmbeddingMode): Promise<number[][]> {
    const model = mode.model ?? this.model;
    const prefix = mode.prefix ?? '';
    const vectors: number[][] = [];
    for (let start = 0; start < texts.length; start += this.batchSize) {
      const batch = texts.slice(start, start + this.batchSize);
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
        response = await this.client.embeddings.create(body);
      } catch (error) {
        throw toLlmError(error, {
          model,
          baseURL: this.baseURL,
          apiKeySet: this.options.apiKey !== undefined,
          timeoutMs: this.options.timeoutMs,
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
      for (const item of ordered) vectors.push(item.embedding);
    }
    return vectors;
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
      timeoutMs: config.OPENAI_TIMEOUT_MS,
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
