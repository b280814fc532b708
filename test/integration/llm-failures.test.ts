import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ErrorType } from '../../lib/errors.js';
import { FALLBACK_MESSAGES, type AnswerQueryInput } from '../../contracts/query.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { startFakeOpenAI, type FakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';

/**
 * The real query workflow on a real Temporal dev server, generating with the OpenAI-compatible adapter against a
 * local fake endpoint that fails on demand: each failure must end in a retried success or a degraded answer that
 * says why, within the query's deadline.
 */

const TIMEOUT_MS = 1500;

describe('query workflow generating with an OpenAI-compatible endpoint that fails', () => {
  let fake: FakeOpenAI;
  let ragline: TestRagline;

  beforeAll(async () => {
    fake = await startFakeOpenAI({ models: ['fake-model'] });
    ragline = await startRagline({
      config: {
        OPENAI_BASE_URL: fake.baseURL,
        OPENAI_API_KEY: 'sk-test',
        OPENAI_MODEL: 'fake-model',
        OPENAI_TIMEOUT_MS: String(TIMEOUT_MS),
        RAGLINE_LLM_PRICES: '{"fake-model":{"input":1,"output":2}}',
        // These tests are about one query's retry policy; the breaker, which remembers failures across the file's
        // queries, is tested in resilience.test.ts and must not open here.
        RAGLINE_BREAKER_LLM: 'minCalls=20,window=20',
      },
    });
    await ragline.ingest([SAMPLE_CORPUS]);
  });
  afterAll(async () => {
    await ragline?.stop();
    await fake?.close();
  });
  beforeEach(() => fake.reset());

  // The result cache is bypassed so every question reaches generation; each test asks its own question so the
  // LLM-response cache does not answer for the endpoint either.
  const ask = (query: string, options: AnswerQueryInput['options'] = {}) =>
    ragline.env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `llm-query-${randomUUID()}`,
      args: [{ query, options: { bypassCache: true, ...options } }],
    });

  it('answers with the model, its citations mapping to the sources it was given', async () => {
    fake.script({ kind: 'answer', content: 'Use the reset link on the sign-in page [1].' });
    const result = await ask('How do I reset my password?');

    expect(result).toMatchObject({
      degraded: false,
      model: 'fake-model',
      answer: 'Use the reset link on the sign-in page [1].',
    });
    expect(result.uncited).toBeUndefined();
    expect(result.usage).toEqual({ promptTokens: 100, completionTokens: 20, costUsd: 0.00014 });
    expect(fake.calls).toBe(1);
    const first = result.sources.find((s) => s.n === 1);
    expect(first).toBeDefined();
    const user = fake.requests[0]!.body!.messages[1]!.content;
    expect(user).toContain(`<document n="1" title="${first!.title}">`);
    expect(result.sources.map((s) => s.docId)).toContain('password-reset');
  });

  it('serves a repeated prompt from the LLM-response cache', async () => {
    const first = await ask('How do I set up webhooks?');
    expect(first.cache.llm).toBe('miss');
    const again = await ask('How do I set up webhooks?');
    expect(fake.calls).toBe(1);
    expect(again).toMatchObject({ degraded: false, model: 'fake-model', cache: { llm: 'hit' } });
  });

  it('waits out a 429 for its Retry-After, then answers', async () => {
    fake.script({ kind: 'rate-limit', retryAfter: '1' }, { kind: 'answer' });
    const handle = await ragline.env.client.workflow.start(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `llm-query-${randomUUID()}`,
      args: [{ query: 'What are the API rate limits?', options: { bypassCache: true } }],
    });
    const result = await handle.result();

    expect(result.degraded).toBe(false);
    expect(result.model).toBe('fake-model');
    expect(fake.calls).toBe(2);
    // Retry-After 1 s becomes the activity's nextRetryDelay, replacing the policy's 500 ms first interval: read from
    // the history (the second attempt's start records the failure it retried), not from a clock on a loaded machine.
    const events = (await handle.fetchHistory()).events ?? [];
    const scheduled = new Map(
      events
        .filter((event) => event.activityTaskScheduledEventAttributes)
        .map((event) => [Number(event.eventId), event.activityTaskScheduledEventAttributes?.activityType?.name]),
    );
    const generations = events
      .map((event) => event.activityTaskStartedEventAttributes)
      .filter((started) => started && scheduled.get(Number(started.scheduledEventId)) === 'generateAnswer');
    expect(generations.map((started) => started?.attempt)).toEqual([2]);
    const retried = generations[0]?.lastFailure;
    expect(retried?.applicationFailureInfo?.type).toBe(ErrorType.RateLimited);
    const delay = retried?.applicationFailureInfo?.nextRetryDelay;
    expect(Number(delay?.seconds ?? 0) * 1000 + (delay?.nanos ?? 0) / 1e6).toBe(1000);
  });

  it('answers extractively, flagged degraded with the reason, when the endpoint keeps failing with 500', async () => {
    fake.mode = { kind: 'server-error', status: 500 };
    const result = await ask('How do I configure SSL certificates for the API gateway?');

    expect(result).toMatchObject({ degraded: true, fallbackReason: 'generation-failed', model: 'extractive' });
    // Callers get the stable reason and a short message; the upstream status goes to logs and traces.
    expect(result.fallbackDetail).toBe(FALLBACK_MESSAGES['generation-failed']);
    expect(result.fallbackDetail).not.toContain('500');
    expect(result.answer.length).toBeGreaterThan(0);
    expect(result.sources.length).toBeGreaterThan(0);
    expect(fake.calls).toBe(3);
  });

  it('retries a malformed JSON response and answers', async () => {
    fake.script({ kind: 'malformed' }, { kind: 'answer', content: 'Export from the settings page [1].' });
    const result = await ask('How can I export my data?');

    expect(result).toMatchObject({ degraded: false, model: 'fake-model' });
    expect(fake.calls).toBe(2);
  });

  it('falls back within the query deadline when the endpoint hangs past its timeout', async () => {
    fake.mode = { kind: 'hang' };
    const deadlineMs = 10_000;
    const result = await ask('What are the system requirements?', { deadlineMs });

    // Answered, not failed by the deadline: the hung attempts timed out and the extractive fallback ran after them.
    expect(result).toMatchObject({ degraded: true, fallbackReason: 'generation-failed', model: 'extractive' });
    expect(result.fallbackDetail).toBe(FALLBACK_MESSAGES['generation-failed']);
    expect(fake.calls).toBeGreaterThanOrEqual(2);
  });

  it('falls back at once, without retrying, when the prompt exceeds the context window', async () => {
    fake.mode = { kind: 'context-length' };
    const result = await ask('What does the enterprise plan include?');

    expect(result).toMatchObject({ degraded: true, fallbackReason: 'generation-rejected', model: 'extractive' });
    expect(result.fallbackDetail).toBe(FALLBACK_MESSAGES['generation-rejected']);
    expect(result.fallbackDetail).not.toContain(ErrorType.ContextLength);
    expect(fake.calls).toBe(1);
  });
});
