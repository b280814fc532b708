/**
 * Validation of query input, shared by the client (to fail before starting a workflow) and the workflow (which
 * must not trust its input). Pure and deterministic.
 */
import { tenantProblem } from '../lib/tenant.js';
import { MAX_TOP_K, type AnswerQueryInput } from './answer-query-types.js';

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
