import OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { Cache } from '../cache/cache.js';
import { cacheTtls, llmKey } from '../cache/keys.js';
import type { Config } from '../config.js';
import type { AnswerGenerator, GeneratedAnswer, GenerateRequest, HealthStatus, TokenUsage } from '../domain.js';
import { ErrorType, RaglineError } from '../errors.js';
import { extractCitations } from './citations.js';
import { createOpenAIClient } from '../openai/client.js';
import { LlmBadRequestError, LlmBadResponseError, toLlmError, type LlmErrorContext } from '../openai/errors.js';
import type { LlmMetrics } from './llm-metrics.js';
import { buildPrompt, countPromptTokens, type PromptMessage } from './prompt.js';
import { estimateCostUsd, priceFor, type PriceTable } from './pricing.js';

const OPENAI_BASE_URL = 'https://api.openai.com/v1';

export interface OpenAIGeneratorOptions {
  /** Unset for endpoints that need none (a local Ollama); the Authorization header is then left out entirely. */
  apiKey?: string;
  /** @default https://api.openai.com/v1 */
  baseURL?: string;
  model: string;
  temperature: number;
  maxTokens: number;
  /** Deadline of one request, response body included. */
  timeoutMs: number;
  /** Tokens the retrieved context may take in the prompt. */
  contextTokens: number;
  /** USD per million tokens by model. @default {} */
  prices?: PriceTable;
}

export interface OpenAIGeneratorDeps {
  metrics?: LlmMetrics;
  /** LLM-response cache: an identical prompt with identical parameters is answered without calling the model. */
  cache?: Cache;
  /** TTL of LLM-response entries. @default 86400000 */
  cacheTtlMs?: number;
  /** Told about cache failures, which never fail a generation. */
  logger?: { warn(details: object, message: string): void };
}

// Requests without a tenant share one key space, which is safe: the key hashes the whole prompt, chunks included.
const SHARED_TENANT = '*';
const DEFAULT_CACHE_TTL_MS = 86_400_000;

function isGeneratedAnswer(value: unknown): value is GeneratedAnswer {
  const candidate = value as Partial<GeneratedAnswer> | null;
  return (
    typeof candidate === 'object' &&
    candidate !== null &&
    typeof candidate.answer === 'string' &&
    Array.isArray(candidate.citations) &&
    typeof candidate.model === 'string'
  );
}

const NO_CONTEXT_ANSWER = "I don't know: no documents were found for this question.";

export class OpenAIGenerator implements AnswerGenerator {
  readonly model: string;
  readonly baseURL: string;
  private readonly client: OpenAI;
  private readonly prices: PriceTable;

  constructor(
    private readonly options: OpenAIGeneratorOptions,
    private readonly deps: OpenAIGeneratorDeps = {},
  ) {
    this.model = options.model;
    this.baseURL = (options.baseURL ?? OPENAI_BASE_URL).replace(/\/+$/, '');
    this.prices = options.prices ?? {};
    this.client = createOpenAIClient({ apiKey: options.apiKey, baseURL: this.baseURL, timeoutMs: options.timeoutMs });
  }

  async generate(request: GenerateRequest): Promise<GeneratedAnswer> {
    if (request.chunks.length === 0) {
      // Nothing to ground an answer in: asking the model could only invite it to guess.
      return {
        answer: NO_CONTEXT_ANSWER,
        citations: [],
        model: this.model,
        uncited: true,
        usage: { promptTokens: 0, completionTokens: 0, costUsd: 0 },
      };
    }
    const prompt = buildPrompt(request.query, request.chunks, { contextTokens: this.options.contextTokens });
    const key = this.cacheKey(request.tenant ?? SHARED_TENANT, prompt.messages);

    const hit = await this.cacheGet(key);
    if (hit) {
      this.deps.metrics?.requests.inc({ model: this.model, outcome: 'cached' });
      return { ...hit, cached: true, usage: { promptTokens: 0, completionTokens: 0, costUsd: 0 } };
    }

    const deadline = AbortSignal.timeout(this.options.timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
    let completion: ChatCompletion;
    const body = {
      model: this.model,
      messages: prompt.messages,
      temperature: this.options.temperature,
      // `max_tokens`, not `max_completion_tokens`: every OpenAI-compatible server understands it.
      max_tokens: this.options.maxTokens,
    };
    try {
      completion = request.onDelta
        ? await this.streamed(body, signal, request.onDelta)
        : await this.client.chat.completions.create(body, { signal });
    } catch (error) {
      throw this.failed(error, deadline.aborted && !request.signal?.aborted);
    }

    let answer: GeneratedAnswer;
    try {
      answer = this.toAnswer(
        completion,
        prompt.included.map((chunk) => chunk.n),
        prompt.promptTokens,
      );
    } catch (error) {
      throw this.failed(error, false);
    }
    this.record(answer.usage);
    await this.cacheSet(key, answer);
    // `false` rather than absent tells callers the cache was asked and missed, which they report as such.
    return this.deps.cache ? { ...answer, cached: false } : answer;
  }

  /**
   * Streams the completion, handing each content delta on as it arrives, and folds the chunks back into the one
   * completion the non-streamed path gets, so citations, usage, caching and errors are handled once. A connection
   * that drops mid-stream throws like any other failed request: the activity retries and the caller is told to
   * discard what it showed.
   */
  private async streamed(
    body: ChatCompletionCreateParamsNonStreaming,
    signal: AbortSignal,
    onDelta: (text: string) => void,
  ): Promise<ChatCompletion> {
    const stream = await this.client.chat.completions.create(
      // Usage arrives in a last chunk only when asked for; servers that ignore the option leave our estimate in place.
      { ...body, stream: true, stream_options: { include_usage: true } },
      { signal },
    );
    let content = '';
    let seen = false;
    let id = '';
    let model = this.model;
    let finishReason: ChatCompletion.Choice['finish_reason'] | null = null;
    let usage: ChatCompletion['usage'];
    for await (const chunk of stream) {
      id ||= chunk.id;
      model = chunk.model || model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      seen = true;
      const delta = choice.delta?.content;
      if (delta) {
        content += delta;
        onDelta(delta);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
    // The SDK ends a stream quietly when its signal aborts; a timeout or cancellation must fail, not look complete.
    signal.throwIfAborted();
    return {
      id,
      object: 'chat.completion',
      created: 0,
      model,
      choices: seen
        ? [
            {
              index: 0,
              message: { role: 'assistant', content, refusal: null },
              finish_reason: finishReason ?? 'stop',
              logprobs: null,
            },
          ]
        : [],
      ...(usage ? { usage } : {}),
    };
  }

  async health(): Promise<HealthStatus> {
    return (await this.probe()).status;
  }

  /**
   * Startup check: throws the ConfigurationError a misconfiguration earns (a key the endpoint requires but is not
   * set, a rejected key, an unknown model) and otherwise reports health, since an endpoint that is merely down may
   * come back and queries degrade to extractive answers meanwhile.
   */
  async verify(): Promise<HealthStatus> {
    const { status, error } = await this.probe();
    if (error?.type === ErrorType.Configuration) throw error;
    return status;
  }

  private async probe(): Promise<{ status: HealthStatus; error?: RaglineError }> {
    const started = performance.now();
    const detail = `model ${this.model} at ${this.baseURL}`;
    const elapsed = () => Math.round(performance.now() - started);
    try {
      await this.client.models.retrieve(this.model);
      return { status: { ok: true, latencyMs: elapsed(), detail } };
    } catch (error) {
      let mapped = toLlmError(error, this.errorContext(false));
      // Some servers (vLLM among them) list models but cannot retrieve one: ask the list before calling it unknown.
      if (error instanceof OpenAI.NotFoundError) {
        try {
          const ids: string[] = [];
          for await (const model of this.client.models.list()) ids.push(model.id);
          if (ids.includes(this.model)) return { status: { ok: true, latencyMs: elapsed(), detail } };
          const served = ids.length > 0 ? `; it serves ${ids.slice(0, 10).join(', ')}` : '';
          mapped = new RaglineError(
            ErrorType.Configuration,
            `model ${this.model} is not served by ${this.baseURL}${served}`,
          );
        } catch {
          // The list failing too says nothing more than the 404 did.
        }
      }
      return { status: { ok: false, latencyMs: elapsed(), detail, error: mapped.message }, error: mapped };
    }
  }

  private toAnswer(completion: ChatCompletion, valid: number[], estimatedPromptTokens: number): GeneratedAnswer {
    // A server that sends a non-JSON body gets it back from the SDK as a string.
    const choice = typeof completion === 'object' && completion !== null ? completion.choices?.[0] : undefined;
    if (choice?.finish_reason === 'content_filter') {
      throw new LlmBadRequestError(`the content filter of ${this.baseURL} withheld the answer of model ${this.model}`);
    }
    const content = choice?.message?.content;
    if (typeof content !== 'string' || content.trim() === '') {
      throw new LlmBadResponseError(`${this.baseURL} returned no answer text for model ${this.model}`);
    }
    const cited = extractCitations(content.trim(), valid);
    const usage = this.usage(completion, estimatedPromptTokens, cited.answer);
    return {
      answer: cited.answer,
      citations: cited.citations,
      model: this.model,
      usage,
      ...(cited.uncited ? { uncited: true } : {}),
    };
  }

  private usage(completion: ChatCompletion, estimatedPromptTokens: number, answer: string): TokenUsage {
    // Some local servers omit usage; our own count keeps cost and token metrics from silently reading zero.
    const promptTokens = completion.usage?.prompt_tokens ?? estimatedPromptTokens;
    const completionTokens = completion.usage?.completion_tokens ?? countPromptTokens(answer);
    const price = priceFor(this.prices, this.model, completion.model);
    return { promptTokens, completionTokens, costUsd: estimateCostUsd(price, promptTokens, completionTokens) };
  }

  private record(usage: TokenUsage | undefined): void {
    const metrics = this.deps.metrics;
    if (!metrics) return;
    metrics.requests.inc({ model: this.model, outcome: 'ok' });
    if (!usage) return;
    metrics.tokens.inc({ model: this.model, kind: 'prompt' }, usage.promptTokens);
    metrics.tokens.inc({ model: this.model, kind: 'completion' }, usage.completionTokens);
    metrics.cost.inc({ model: this.model }, usage.costUsd);
  }

  private failed(error: unknown, timedOut: boolean): RaglineError {
    const mapped = toLlmError(error, this.errorContext(timedOut));
    this.deps.metrics?.requests.inc({ model: this.model, outcome: mapped.type });
    return mapped;
  }

  private errorContext(timedOut: boolean): LlmErrorContext {
    return {
      model: this.model,
      baseURL: this.baseURL,
      apiKeySet: this.options.apiKey !== undefined,
      timeoutMs: this.options.timeoutMs,
      timedOut,
    };
  }

  private cacheKey(tenant: string, messages: PromptMessage[]): string {
    return llmKey({
      tenant,
      model: this.model,
      prompt: JSON.stringify(messages),
      temperature: this.options.temperature,
      maxTokens: this.options.maxTokens,
      // The same model name on another endpoint may be another model (a local llama is not a gateway's llama).
      options: { baseURL: this.baseURL },
    });
  }

  private async cacheGet(key: string): Promise<GeneratedAnswer | undefined> {
    if (!this.deps.cache) return undefined;
    try {
      const value = await this.deps.cache.get<unknown>(key);
      return isGeneratedAnswer(value) ? value : undefined;
    } catch (error) {
      this.deps.logger?.warn({ err: error, key }, 'LLM-response cache read failed; calling the model');
      return undefined;
    }
  }

  private async cacheSet(key: string, answer: GeneratedAnswer): Promise<void> {
    if (!this.deps.cache) return;
    try {
      await this.deps.cache.set(key, answer, { ttlMs: this.deps.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS });
    } catch (error) {
      this.deps.logger?.warn({ err: error, key }, 'LLM-response cache write failed');
    }
  }
}

/**
 * The generator the configuration asks for, or undefined when neither OPENAI_API_KEY nor OPENAI_BASE_URL is set
 * (answers are then extractive). Call `verify()` on it at startup to fail fast on a missing or rejected key or an
 * unknown model.
 */
export function openAIGeneratorFromConfig(config: Config, deps: OpenAIGeneratorDeps = {}): OpenAIGenerator | undefined {
  if (config.OPENAI_API_KEY === undefined && config.OPENAI_BASE_URL === undefined) return undefined;
  return new OpenAIGenerator(
    {
      apiKey: config.OPENAI_API_KEY,
      baseURL: config.OPENAI_BASE_URL,
      model: config.OPENAI_MODEL,
      temperature: config.OPENAI_TEMPERATURE,
      maxTokens: config.OPENAI_MAX_TOKENS,
      timeoutMs: config.OPENAI_TIMEOUT_MS,
      contextTokens: config.RAGLINE_CONTEXT_TOKENS,
      prices: config.RAGLINE_LLM_PRICES,
    },
    { cacheTtlMs: cacheTtls(config).llm, ...deps },
  );
}
