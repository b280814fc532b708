import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  AuthenticationError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitError,
} from 'openai';
import { ErrorType, RaglineError } from '../errors.js';

/** What the mapping needs to say which endpoint, model and key an error is about. */
export interface LlmErrorContext {
  model: string;
  baseURL: string;
  apiKeySet: boolean;
  timeoutMs: number;
  /** Set when our own deadline (not the caller's signal) aborted the request. */
  timedOut?: boolean;
}

export class LlmRateLimitedError extends RaglineError {
  constructor(message: string, retryAfterMs: number | undefined, cause: unknown) {
    super(ErrorType.RateLimited, message, { cause, retryAfterMs });
  }
}

export class LlmUnavailableError extends RaglineError {
  constructor(message: string, cause?: unknown) {
    super(ErrorType.Unavailable, message, { cause });
  }
}

export class LlmContextLengthError extends RaglineError {
  constructor(message: string, cause?: unknown) {
    super(ErrorType.ContextLength, message, { cause });
  }
}

export class LlmConfigurationError extends RaglineError {
  constructor(message: string, cause?: unknown) {
    super(ErrorType.Configuration, message, { cause });
  }
}

/** A 400 that is not about context length: the request itself is wrong, so a retry would send the same thing. */
export class LlmBadRequestError extends RaglineError {
  constructor(message: string, cause?: unknown) {
    super(ErrorType.InvalidInput, message, { cause });
  }
}

/** The endpoint answered 2xx with something we cannot use; another attempt may well get a proper answer. */
export class LlmBadResponseError extends RaglineError {
  constructor(message: string, cause?: unknown) {
    super(ErrorType.BadResponse, message, { cause });
  }
}

// OpenAI says `context_length_exceeded`; vLLM, Ollama, LM Studio and gateways each word it their own way.
const CONTEXT_LENGTH_CODES = new Set(['context_length_exceeded', 'string_above_max_length']);
const CONTEXT_LENGTH_MESSAGE =
  /context[ _-]?(length|window)|maximum context|too many tokens|prompt is too long|input is too long|exceeds? the (model'?s? )?(max|limit)/i;

/**
 * Milliseconds the endpoint asked us to wait: `retry-after-ms` (OpenAI's extension) first, then `retry-after`
 * as seconds or as an HTTP date. Undefined when absent or unparseable, so Temporal's backoff applies instead.
 */
export function parseRetryAfterMs(headers: Headers | undefined, now: number = Date.now()): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get('retry-after-ms');
  if (ms !== null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return Math.ceil(value);
  }
  const raw = headers.get('retry-after')?.trim();
  if (!raw) return undefined;
  if (/^\d+(\.\d+)?$/.test(raw)) return Math.ceil(Number(raw) * 1000);
  const date = Date.parse(raw);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

function isContextLengthError(error: APIError): boolean {
  if (error.code && CONTEXT_LENGTH_CODES.has(error.code)) return true;
  return CONTEXT_LENGTH_MESSAGE.test(error.message);
}

function isAbortLike(error: unknown): boolean {
  return error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError');
}

/**
 * Maps whatever the `openai` SDK (or reading its response) threw into ragline's named errors, choosing the type
 * by whether a retry could help: rate limits and outages are retried by Temporal, a bad key or unknown model or
 * an oversized prompt are not, so the workflow falls back at once.
 */
export function toLlmError(error: unknown, context: LlmErrorContext): RaglineError {
  if (error instanceof RaglineError) return error;
  const at = `${context.baseURL} (model ${context.model})`;

  if (
    error instanceof APIConnectionTimeoutError ||
    (context.timedOut && (error instanceof APIUserAbortError || isAbortLike(error)))
  ) {
    return new LlmUnavailableError(`LLM request to ${at} timed out after ${context.timeoutMs} ms`, error);
  }
  if (error instanceof APIUserAbortError || isAbortLike(error)) {
    return new LlmUnavailableError(`LLM request to ${at} was cancelled`, error);
  }
  if (error instanceof APIConnectionError) {
    return new LlmUnavailableError(`cannot reach LLM endpoint ${at}: ${error.message}`, error);
  }
  if (error instanceof RateLimitError) {
    // A spent quota looks like a rate limit but no amount of waiting fixes it.
    if (error.code === 'insufficient_quota') {
      return new LlmConfigurationError(
        `LLM endpoint ${at} reports the account's quota is exhausted: ${error.message}`,
        error,
      );
    }
    const retryAfterMs = parseRetryAfterMs(error.headers);
    const after = retryAfterMs === undefined ? '' : `, retry after ${retryAfterMs} ms`;
    return new LlmRateLimitedError(`LLM endpoint ${at} rate-limited the request${after}`, retryAfterMs, error);
  }
  if (error instanceof AuthenticationError) {
    return new LlmConfigurationError(
      context.apiKeySet
        ? `${context.baseURL} rejected OPENAI_API_KEY (401): ${error.message}`
        : `OPENAI_API_KEY is not set and ${context.baseURL} requires one`,
      error,
    );
  }
  if (error instanceof PermissionDeniedError) {
    return new LlmConfigurationError(
      `OPENAI_API_KEY may not use model ${context.model} at ${context.baseURL} (403): ${error.message}`,
      error,
    );
  }
  if (error instanceof NotFoundError) {
    return new LlmConfigurationError(
      `model ${context.model} is not available at ${context.baseURL} (404); check OPENAI_MODEL and OPENAI_BASE_URL: ${error.message}`,
      error,
    );
  }
  if (error instanceof APIError && typeof error.status === 'number') {
    const status = error.status;
    if ((status === 400 || status === 413 || status === 422) && (status === 413 || isContextLengthError(error))) {
      return new LlmContextLengthError(
        `prompt exceeds the context window of model ${context.model}: ${error.message}`,
        error,
      );
    }
    if (status === 400 || status === 422) {
      return new LlmBadRequestError(`LLM endpoint ${at} rejected the request (${status}): ${error.message}`, error);
    }
    return new LlmUnavailableError(`LLM endpoint ${at} failed (${status}): ${error.message}`, error);
  }
  if (error instanceof SyntaxError) {
    return new LlmBadResponseError(`LLM endpoint ${at} returned malformed JSON: ${error.message}`, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return new LlmUnavailableError(`LLM request to ${at} failed: ${message}`, error);
}
