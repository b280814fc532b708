/**
 * Failure types as they appear in `ApplicationFailure.type`. Adapters throw the small named errors below;
 * the activity boundary (activities/failures.ts) turns them into ApplicationFailures with these types.
 * Workflow code may import this module: it has no runtime dependencies.
 */
export const ErrorType = {
  /** The query or document is malformed: empty, too long, control characters, unknown file type. */
  InvalidInput: 'InvalidInput',
  /** Misconfiguration: a missing key, an unknown model, a bad URL. */
  Configuration: 'ConfigurationError',
  /** The model rejected the prompt as too long for its context window. */
  ContextLength: 'ContextLengthExceeded',
  /** The LLM endpoint rate-limited us; retried after its Retry-After. */
  RateLimited: 'RateLimited',
  /** A dependency failed in a way that may pass: 5xx, connection refused, timeout. */
  Unavailable: 'DependencyUnavailable',
  /** The LLM endpoint answered something we cannot use (malformed JSON, empty choice). */
  BadResponse: 'BadResponse',
  /** The requested document does not exist. */
  NotFound: 'NotFound',
  /** The dependency's circuit breaker is open: the call was refused at once, so fall back instead of retrying. */
  CircuitOpen: 'CircuitOpen',
} as const;
export type ErrorType = (typeof ErrorType)[keyof typeof ErrorType];

/** Types a retry would not fix; every retry policy lists them. */
export const NON_RETRYABLE_ERROR_TYPES: string[] = [
  ErrorType.InvalidInput,
  ErrorType.Configuration,
  ErrorType.ContextLength,
  ErrorType.NotFound,
  ErrorType.CircuitOpen,
];

/** Base of the adapters' named errors. */
export class RaglineError extends Error {
  constructor(
    readonly type: ErrorType,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = type;
    this.retryAfterMs = options?.retryAfterMs;
  }
  readonly retryAfterMs: number | undefined;
}

export class InvalidInputError extends RaglineError {
  constructor(message: string) {
    super(ErrorType.InvalidInput, message);
  }
}
