import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { OpenAIGenerator } from '../../lib/generation/openai-generator.js';
import { startFakeOpenAI, TWO_CHUNKS, streamChunks, type FakeOpenAI, type FakeReply } from '../support/fake-openai.js';

const chunks = TWO_CHUNKS;

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await startFakeOpenAI();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

const generator = (deps: ConstructorParameters<typeof OpenAIGenerator>[1] = {}, timeoutMs = 2000) =>
  new OpenAIGenerator(
    { baseURL: fake.baseURL, model: 'fake-model', temperature: 0, maxTokens: 256, timeoutMs, contextTokens: 1000 },
    deps,
  );

async function streamed(reply?: FakeReply, timeoutMs?: number) {
  if (reply) fake.script(reply);
  const deltas: string[] = [];
  const answer = await generator({}, timeoutMs).generate({
    query: 'How long is the warranty?',
    chunks,
    onDelta: (text) => deltas.push(text),
  });
  return { answer, deltas };
}

async function streamFailure(reply: FakeReply, timeoutMs?: number) {
  const deltas: string[] = [];
  fake.script(reply);
  const error = await generator({}, timeoutMs)
    .generate({ query: 'How long is the warranty?', chunks, onDelta: (text) => deltas.push(text) })
    .then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
  expect(error).toBeInstanceOf(RaglineError);
  return { error: error as RaglineError, deltas };
}

describe('OpenAIGenerator streaming', () => {
  it('asks for a stream, hands on every delta in order, and returns the same answer a plain request would', async () => {
    const content = 'The warranty lasts two years [1], and returns take 30 days [2].';
    const { answer, deltas } = await streamed({
      kind: 'answer',
      content,
      usage: { prompt_tokens: 77, completion_tokens: 15 },
    });
    expect(fake.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(deltas).toEqual(streamChunks(content));
    expect(deltas.length).toBeGreaterThan(5);
    expect(deltas.join('')).toBe(answer.answer);
    expect(answer.citations).toEqual([1, 2]);
    expect(answer.usage).toMatchObject({ promptTokens: 77, completionTokens: 15 });
  });

  it('does not stream when nobody listens', async () => {
    const answer = await generator().generate({ query: 'How long is the warranty?', chunks });
    expect(fake.requests[0]?.body?.stream).toBeUndefined();
    expect(fake.streamedCalls).toBe(0);
    expect(answer.citations).toEqual([1]);
  });

  it('estimates usage when the server sends no usage chunk', async () => {
    const { answer } = await streamed({ kind: 'answer', usage: null });
    expect(answer.usage?.promptTokens).toBeGreaterThan(0);
    expect(answer.usage?.completionTokens).toBeGreaterThan(0);
  });

  it('a connection dropped mid-stream is Unavailable (retryable) after the deltas already sent', async () => {
    const { error, deltas } = await streamFailure({ kind: 'stream-break', afterChunks: 3 });
    expect(error.type).toBe(ErrorType.Unavailable);
    expect(deltas).toHaveLength(3);
  });

  it('a malformed chunk is BadResponse', async () => {
    expect((await streamFailure({ kind: 'malformed' })).error.type).toBe(ErrorType.BadResponse);
  });

  it('a stream with no choices is BadResponse', async () => {
    expect((await streamFailure({ kind: 'empty-choices' })).error.type).toBe(ErrorType.BadResponse);
  });

  it('a stream that stalls after its headers times out as Unavailable', async () => {
    const { error } = await streamFailure({ kind: 'stall-body' }, 300);
    expect(error.type).toBe(ErrorType.Unavailable);
    expect(error.message).toMatch(/timed out after 300 ms/);
  });

  it('errors before the stream starts keep their types (a rate limit)', async () => {
    const { error, deltas } = await streamFailure({ kind: 'rate-limit', retryAfter: '2' });
    expect(error.type).toBe(ErrorType.RateLimited);
    expect(deltas).toEqual([]);
  });

  it('a withheld stream (content_filter) is refused like a withheld completion', async () => {
    const { error } = await streamFailure({ kind: 'answer', finishReason: 'content_filter' });
    expect(error.type).toBe(ErrorType.InvalidInput);
  });

  it('a streamed answer is cached whole; the cached one comes back without streaming', async () => {
    const cache = new MemoryCache({ maxEntries: 100, maxBytes: 1_000_000 });
    const first: string[] = [];
    const request = { query: 'How long is the warranty?', tenant: 't', chunks };
    const streamedAnswer = await generator({ cache }).generate({ ...request, onDelta: (text) => first.push(text) });
    const again: string[] = [];
    const cached = await generator({ cache }).generate({ ...request, onDelta: (text) => again.push(text) });
    expect(first.join('')).toBe(streamedAnswer.answer);
    expect(cached).toMatchObject({ answer: streamedAnswer.answer, cached: true });
    expect(again).toEqual([]);
    expect(fake.calls).toBe(1);
  });
});
