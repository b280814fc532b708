import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { toApplicationFailure } from '../../activities/failures.js';
import type { ContextChunk } from '../../lib/domain.js';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES, RaglineError } from '../../lib/errors.js';
import { parseRetryAfterMs } from '../../lib/openai/errors.js';
import { createLlmMetrics } from '../../lib/generation/llm-metrics.js';
import { OpenAIGenerator } from '../../lib/generation/openai-generator.js';
import { startFakeOpenAI, type FakeOpenAI, type FakeReply } from '../support/fake-openai.js';

const chunks: ContextChunk[] = [
  {
    n: 1,
    chunkId: 'warranty#0',
    docId: 'warranty',
    title: 'Warranty',
    text: 'The warranty lasts two years.',
    score: 1,
  },
];

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const generator = (timeoutMs = 2000, model = 'fake-model', registry?: Registry) =>
  new OpenAIGenerator(
    { apiKey: 'sk-test', baseURL: fake.baseURL, model, temperature: 0, maxTokens: 64, timeoutMs, contextTokens: 500 },
    registry ? { metrics: createLlmMetrics(registry) } : {},
  );

async function failWith(reply: FakeReply, timeoutMs?: number): Promise<RaglineError> {
  fake.mode = reply;
  const error = await generator(timeoutMs)
    .generate({ query: 'q', chunks })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(RaglineError);
  // The SDK's own retries are off: Temporal's retry policy is the only loop.
  expect(fake.calls).toBe(1);
  return error as RaglineError;
}

const retryable = (error: RaglineError) => !NON_RETRYABLE_ERROR_TYPES.includes(error.type);

describe('LLM failures map to named errors', () => {
  it('429 with Retry-After seconds → RateLimited carrying the delay', async () => {
    const error = await failWith({ kind: 'rate-limit', retryAfter: '7' });
    expect(error.type).toBe(ErrorType.RateLimited);
    expect(error.retryAfterMs).toBe(7000);
    expect(retryable(error)).toBe(true);
    const failure = toApplicationFailure(error);
    expect(failure).toMatchObject({ type: ErrorType.RateLimited, nonRetryable: false, nextRetryDelay: 7000 });
  });

  it('429 with retry-after-ms → RateLimited with that many milliseconds', async () => {
    const error = await failWith({ kind: 'rate-limit', retryAfterMs: '1500', retryAfter: '60' });
    expect(error.retryAfterMs).toBe(1500);
  });

  it('429 with an HTTP-date Retry-After → RateLimited with the time until then', async () => {
    const at = new Date(Date.now() + 30_000).toUTCString();
    const error = await failWith({ kind: 'rate-limit', retryAfter: at });
    expect(error.retryAfterMs).toBeGreaterThan(25_000);
    expect(error.retryAfterMs).toBeLessThanOrEqual(30_000);
  });

  it('429 without Retry-After leaves the delay to the retry policy', async () => {
    const error = await failWith({ kind: 'rate-limit' });
    expect(error.type).toBe(ErrorType.RateLimited);
    expect(error.retryAfterMs).toBeUndefined();
  });

  it('429 for an exhausted quota is a configuration problem, not worth retrying', async () => {
    const error = await failWith({ kind: 'rate-limit', retryAfter: '1', code: 'insufficient_quota' });
    expect(error.type).toBe(ErrorType.Configuration);
    expect(retryable(error)).toBe(false);
  });

  it.each([500, 502, 503])('%i → Unavailable, retryable', async (status) => {
    const error = await failWith({ kind: 'server-error', status });
    expect(error.type).toBe(ErrorType.Unavailable);
    expect(error.message).toContain(`(${status})`);
    expect(retryable(error)).toBe(true);
  });

  it('malformed JSON → BadResponse, retryable', async () => {
    const error = await failWith({ kind: 'malformed' });
    expect(error.type).toBe(ErrorType.BadResponse);
    expect(retryable(error)).toBe(true);
  });

  it('no choices → BadResponse, retryable', async () => {
    const error = await failWith({ kind: 'empty-choices' });
    expect(error.type).toBe(ErrorType.BadResponse);
  });

  it('a hang past the timeout → Unavailable naming the timeout', async () => {
    const error = await failWith({ kind: 'hang' }, 300);
    expect(error.type).toBe(ErrorType.Unavailable);
    expect(error.message).toMatch(/timed out after 300 ms/);
  });

  it('headers then a stalled body → Unavailable at the same deadline', async () => {
    const error = await failWith({ kind: 'stall-body' }, 300);
    expect(error.type).toBe(ErrorType.Unavailable);
    expect(error.message).toMatch(/timed out after 300 ms/);
  });

  it('context-length 400 → ContextLength, not retryable', async () => {
    const error = await failWith({ kind: 'context-length' });
    expect(error.type).toBe(ErrorType.ContextLength);
    expect(retryable(error)).toBe(false);
    expect(toApplicationFailure(error).nonRetryable).toBe(true);
  });

  it('context-length worded without a code (vLLM, Ollama) → ContextLength', async () => {
    const error = await failWith({
      kind: 'bad-request',
      message: "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
    });
    expect(error.type).toBe(ErrorType.ContextLength);
  });

  it('any other 400 → InvalidInput, not retryable', async () => {
    const error = await failWith({ kind: 'bad-request' });
    expect(error.type).toBe(ErrorType.InvalidInput);
    expect(retryable(error)).toBe(false);
  });

  it('401 → Configuration', async () => {
    fake.requireKey = 'sk-other';
    const error = await failWith({ kind: 'answer' });
    expect(error.type).toBe(ErrorType.Configuration);
    expect(retryable(error)).toBe(false);
  });

  it('404 for an unknown model → Configuration naming the model', async () => {
    const error = await generator(2000, 'no-such-model')
      .generate({ query: 'q', chunks })
      .then(
        () => undefined,
        (e: unknown) => e as RaglineError,
      );
    expect(error?.type).toBe(ErrorType.Configuration);
    expect(error?.message).toContain('model no-such-model is not available at');
  });

  it('a refused connection → Unavailable', async () => {
    const llm = new OpenAIGenerator({
      apiKey: 'k',
      baseURL: 'http://127.0.0.1:9/v1',
      model: 'm',
      temperature: 0,
      maxTokens: 8,
      timeoutMs: 2000,
      contextTokens: 500,
    });
    const error = await llm.generate({ query: 'q', chunks }).catch((e: unknown) => e as RaglineError);
    expect(error).toMatchObject({ type: ErrorType.Unavailable });
  });

  it('counts failures by type', async () => {
    const registry = new Registry();
    fake.mode = { kind: 'server-error' };
    await generator(2000, 'fake-model', registry)
      .generate({ query: 'q', chunks })
      .catch(() => undefined);
    expect(await registry.metrics()).toContain(
      `rag_llm_requests_total{model="fake-model",outcome="${ErrorType.Unavailable}"} 1`,
    );
  });
});

describe('parseRetryAfterMs', () => {
  const headers = (entries: Record<string, string>) => new Headers(entries);
  it('reads seconds, fractions, dates and retry-after-ms, preferring the latter', () => {
    expect(parseRetryAfterMs(headers({ 'retry-after': '2' }))).toBe(2000);
    expect(parseRetryAfterMs(headers({ 'retry-after': '0.5' }))).toBe(500);
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '250', 'retry-after': '9' }))).toBe(250);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfterMs(headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' }), now)).toBe(10_000);
    expect(parseRetryAfterMs(headers({ 'retry-after': 'Wed, 31 Dec 2025 23:00:00 GMT' }), now)).toBe(0);
  });
  it('ignores absent or unparseable values', () => {
    expect(parseRetryAfterMs(undefined)).toBeUndefined();
    expect(parseRetryAfterMs(headers({}))).toBeUndefined();
    expect(parseRetryAfterMs(headers({ 'retry-after': 'soon' }))).toBeUndefined();
    expect(parseRetryAfterMs(headers({ 'retry-after-ms': '-3' }))).toBeUndefined();
  });
});
