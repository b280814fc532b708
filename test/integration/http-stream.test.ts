import { spawn } from 'node:child_process';
import path from 'node:path';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerStreamEvent } from '../../client/answer-stream.js';
import { createHttpApi } from '../../http/server.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { createApiToken, parseApiTokens } from '../../lib/api-tokens.js';
import { RedisTokenChannel } from '../../lib/stream/token-channel.js';
import type { AnswerQueryResult } from '../../contracts/query.js';
import { childEnv } from '../support/cli.js';
import { startFakeOpenAI, streamChunks, type FakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';
import { TestRedis } from '../support/redis.js';

const ANSWER =
  'API requests are limited per key [1]. When you exceed the limit the API answers 429 with a Retry-After header [1].';

interface ParsedEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Reads a text/event-stream response event by event, as a browser's EventSource would. */
class SseReader {
  private readonly queue: ParsedEvent[] = [];
  private readonly reader: ReadableStreamDefaultReader<string>;
  private readonly parser = createParser({
    onEvent: (message: EventSourceMessage) =>
      this.queue.push({ event: message.event ?? 'message', data: JSON.parse(message.data) as Record<string, unknown> }),
  });

  constructor(response: Response) {
    if (!response.body) throw new Error('no body');
    this.reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event, or undefined at the end of the stream. */
  async next(): Promise<ParsedEvent | undefined> {
    while (this.queue.length === 0) {
      const { value, done } = await this.reader.read();
      if (done) return undefined;
      this.parser.feed(value);
    }
    return this.queue.shift();
  }

  async take(count: number): Promise<ParsedEvent[]> {
    const events: ParsedEvent[] = [];
    while (events.length < count) {
      const event = await this.next();
      if (!event) break;
      events.push(event);
    }
    return events;
  }

  async rest(): Promise<ParsedEvent[]> {
    const events: ParsedEvent[] = [];
    for (let event = await this.next(); event; event = await this.next()) events.push(event);
    return events;
  }

  async cancel(): Promise<void> {
    await this.reader.cancel();
  }
}

const tokensOf = (events: ParsedEvent[]) => events.filter((e) => e.event === 'token').map((e) => e.data.text as string);

describe('streaming answers', () => {
  let fake: FakeOpenAI;
  let redis: TestRedis;
  let local: TestRagline;
  let remote: TestRagline;
  const apis: FastifyInstance[] = [];
  const channels: RedisTokenChannel[] = [];
  let inProcessBase: string;
  let redisBase: string;
  let redisClient: RaglineClient;
  const defaultToken = createApiToken('default');
  const acmeToken = createApiToken('acme');
  const tokens = parseApiTokens([defaultToken.entry, acmeToken.entry].join(','));

  beforeAll(async () => {
    fake = await startFakeOpenAI();
    redis = await TestRedis.start();
    const env = await startTestTemporal();
    const llm = {
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      OPENAI_TIMEOUT_MS: '5000',
      // Broken streams are injected on purpose; the breaker must not open on them for the file's later queries.
      RAGLINE_BREAKER_LLM: 'minCalls=20,window=20',
    };
    // Two workers on one dev server: one with no Redis (tokens only reach this process), one publishing to Redis.
    [local, remote] = await Promise.all([
      startRagline({ env, config: llm }),
      startRagline({ env, config: { ...llm, REDIS_URL: redis.url } }),
    ]);
    await Promise.all([local.ingest([SAMPLE_CORPUS]), remote.ingest([SAMPLE_CORPUS])]);
    await remote.ingest([path.join(SAMPLE_CORPUS, 'webhooks.md')], 'acme');
    // The API over the in-process channel shares it with the worker, as `serve --worker` does.
    const inProcess = new RaglineClient(
      local.env.client,
      local.taskQueue,
      { maxQueryChars: 4000 },
      { tokens: local.runtime.deps.tokens },
    );
    // The API over Redis has its own connections, as a separate process would.
    const channel = new RedisTokenChannel({ url: redis.url });
    channels.push(channel);
    redisClient = new RaglineClient(remote.env.client, remote.taskQueue, { maxQueryChars: 4000 }, { tokens: channel });
    const listen = async (api: FastifyInstance) => {
      apis.push(api);
      return api.listen({ port: 0, host: '127.0.0.1' });
    };
    inProcessBase = await listen(await createHttpApi(inProcess, { tokens, rateLimitPerMinute: 1000 }));
    redisBase = await listen(await createHttpApi(redisClient, { tokens, rateLimitPerMinute: 1000 }));
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    for (const channel of channels) await channel.close();
    await remote?.stop();
    await local?.stop();
    await local?.env.teardown();
    await redis?.stop();
    await fake?.close();
  });
  beforeEach(() => {
    fake.reset();
    fake.mode = { kind: 'answer', content: ANSWER };
  });

  const stream = (
    base: string,
    body: Record<string, unknown>,
    options: { token?: string; signal?: AbortSignal } = {},
  ) =>
    fetch(`${base}/v1/query?stream=true`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${options.token ?? defaultToken.token}`,
      },
      body: JSON.stringify(body),
      signal: options.signal,
    });

  for (const [name, base, kind] of [
    ['in-process', () => inProcessBase, 'in-process'],
    ['Redis pub/sub', () => redisBase, 'redis'],
  ] as const) {
    it(`sends tokens while the answer is written, then the final result (${name})`, async () => {
      // The fake holds the answer after three tokens: they can only reach us while the workflow is still running.
      const hold = fake.holdStream(3);
      const response = await stream(base(), { query: `What are the API rate limits? (${name})` });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
      expect(response.headers.get('x-ratelimit-limit')).toBe('1000');
      const sse = new SseReader(response);
      const first = await sse.take(4);
      expect(first[0]).toMatchObject({ event: 'start', data: { channel: kind } });
      expect(first.slice(1).map((e) => e.event)).toEqual(['token', 'token', 'token']);
      expect(tokensOf(first)).toEqual(streamChunks(ANSWER).slice(0, 3));
      hold.release();
      const rest = await sse.rest();
      const final = rest.at(-1);
      expect(final?.event).toBe('final');
      expect(rest.slice(0, -1).every((e) => e.event === 'token')).toBe(true);
      const result = final?.data as unknown as AnswerQueryResult;
      expect([...tokensOf(first), ...tokensOf(rest)].join('')).toBe(result.answer);
      expect(result).toMatchObject({
        queryId: first[0]?.data.queryId,
        tenant: 'default',
        answer: ANSWER,
        model: 'fake-model',
        cache: { result: 'miss' },
        degraded: false,
      });
      expect(result.sources.map((s) => s.docId)).toContain('api-rate-limits');
      expect(fake.streamedCalls).toBe(1);
    });
  }

  it('keeps the workflow running when the client disconnects mid-stream; the answer is cached and streams at once next time', async () => {
    const query = 'How do I rotate an API key?';
    const hold = fake.holdStream(2);
    const abort = new AbortController();
    const sse = new SseReader(await stream(redisBase, { query }, { signal: abort.signal }));
    const seen = await sse.take(3);
    expect(tokensOf(seen)).toHaveLength(2);
    const queryId = seen[0]?.data.queryId as string;
    abort.abort();
    await sse.cancel().catch(() => undefined);
    hold.release();
    const completed = (await remote.env.client.workflow.getHandle(queryId).result()) as AnswerQueryResult;
    expect(completed).toMatchObject({ answer: ANSWER, degraded: false, cache: { result: 'miss' } });

    const again = await new SseReader(await stream(redisBase, { query })).rest();
    expect(again.map((e) => e.event)).toEqual(['start', 'final']);
    expect(again[1]?.data).toMatchObject({ answer: ANSWER, cache: { result: 'hit' } });
    expect(fake.calls).toBe(1);
  });

  it('tells the client to drop the text of an attempt that broke mid-stream, then streams the retry', async () => {
    fake.script({ kind: 'stream-break', content: ANSWER, afterChunks: 4 });
    const events = await new SseReader(await stream(redisBase, { query: 'How do I reset my password?' })).rest();
    const names = events.map((e) => e.event);
    const reset = names.indexOf('reset');
    expect(reset).toBe(5);
    expect(tokensOf(events.slice(0, reset))).toEqual(streamChunks(ANSWER).slice(0, 4));
    const final = events.at(-1)?.data as unknown as AnswerQueryResult;
    expect(names.at(-1)).toBe('final');
    expect(tokensOf(events.slice(reset)).join('')).toBe(final.answer);
    expect(final).toMatchObject({ answer: ANSWER, degraded: false });
    expect(fake.streamedCalls).toBe(2);
  });

  it('when every attempt breaks, the stream resets once more and ends with the extractive answer', async () => {
    fake.mode = { kind: 'stream-break', content: ANSWER, afterChunks: 2 };
    const events = await new SseReader(await stream(redisBase, { query: 'How do I cancel my subscription?' })).rest();
    const names = events.map((e) => e.event);
    // Three attempts of two tokens each, each followed by a reset: the last one from the fallback.
    expect(names).toEqual([
      'start',
      ...['token', 'token', 'reset'],
      ...['token', 'token', 'reset'],
      ...['token', 'token', 'reset'],
      'final',
    ]);
    expect(events.at(-1)?.data).toMatchObject({ degraded: true, model: 'extractive' });
    expect(fake.streamedCalls).toBe(3);
  });

  it("binds the stream route to the token's tenant and validates before streaming", async () => {
    const body = { query: 'How do webhooks retry failed deliveries?' };
    const missing = await fetch(`${redisBase}/v1/query?stream=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(missing.status).toBe(401);
    const other = await stream(redisBase, { ...body, tenant: 'default' }, { token: acmeToken.token });
    expect(other.status).toBe(403);
    expect(((await other.json()) as { error: { type: string } }).error.type).toBe('Forbidden');
    const empty = await stream(redisBase, { query: '   ' });
    expect(empty.status).toBe(400);
    expect(response400Type(await empty.json())).toBe('InvalidInput');
    const both = await fetch(`${redisBase}/v1/query?stream=true&async=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${defaultToken.token}` },
      body: JSON.stringify(body),
    });
    expect(both.status).toBe(400);
    expect(fake.calls).toBe(0);

    const own = await new SseReader(await stream(redisBase, body, { token: acmeToken.token })).rest();
    const final = own.at(-1)?.data as unknown as AnswerQueryResult;
    expect(final.tenant).toBe('acme');
    expect(new Set(final.sources.map((s) => s.docId))).toEqual(new Set(['webhooks']));
    expect(tokensOf(own).join('')).toBe(final.answer);
  });

  it('ends with a typed error event when the workflow fails after the stream began', async () => {
    // A client looser than the worker: the question passes the API's check and fails the activity's (4000 chars).
    const loose = new RaglineClient(remote.env.client, remote.taskQueue, { maxQueryChars: 10_000 });
    const api = await createHttpApi(loose, { tokens, rateLimitPerMinute: 1000 });
    apis.push(api);
    const base = await api.listen({ port: 0, host: '127.0.0.1' });
    const response = await stream(base, { query: `rate limits ${'x'.repeat(5000)}` });
    expect(response.status).toBe(200);
    const events = await new SseReader(response).rest();
    expect(events.map((e) => e.event)).toEqual(['start', 'error']);
    expect(events[1]?.data).toMatchObject({ error: { type: 'InvalidInput', message: /4000/ } });
    expect(fake.calls).toBe(0);
  });

  it('documents the streaming variant in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${redisBase}/openapi.json`)).json()) as {
      paths: Record<
        string,
        Record<string, { parameters?: Array<{ name: string }>; responses: Record<string, { content?: object }> }>
      >;
    };
    const post = doc.paths['/v1/query']?.post;
    expect(post?.parameters?.map((p) => p.name)).toContain('stream');
    expect(Object.keys(post?.responses['200']?.content ?? {})).toEqual(['application/json', 'text/event-stream']);
  });

  it('publishes only on the tenant-scoped channel of the query', async () => {
    const watcher = new Redis(redis.port, '127.0.0.1');
    const heard: string[] = [];
    watcher.on('pmessage', (_pattern: string, channel: string) => heard.push(channel));
    await watcher.psubscribe('ragline:stream:*');
    const events = await new SseReader(
      await stream(redisBase, { query: 'How do I set up single sign-on?' }, { token: acmeToken.token }),
    ).rest();
    await watcher.quit();
    const queryId = events[0]?.data.queryId as string;
    expect(new Set(heard)).toEqual(new Set([`ragline:stream:acme:${queryId}`]));
    // Every token, then the attempt's end marker.
    expect(heard.length).toBe(tokensOf(events).length + 1);
  });

  it('askStream yields the deltas, then the result; without a channel the result comes at once', async () => {
    const streamed = await redisClient.askStream({ query: 'How long are audit logs kept?' });
    expect(streamed.channel).toBe('redis');
    const events: AnswerStreamEvent[] = [];
    for await (const event of streamed) events.push(event);
    const final = events.at(-1);
    expect(final?.type).toBe('final');
    const result = final?.type === 'final' ? final.result : undefined;
    expect(result?.queryId).toBe(streamed.queryId);
    expect(
      events
        .filter((e) => e.type === 'delta')
        .map((e) => e.text)
        .join(''),
    ).toBe(result?.answer);
    expect(events.filter((e) => e.type === 'delta').length).toBe(streamChunks(ANSWER).length);
    expect(await streamed.result).toEqual(result);

    const silent = new RaglineClient(remote.env.client, remote.taskQueue, { maxQueryChars: 4000 });
    const whole = await silent.askStream({ query: 'What does the enterprise plan include?' });
    expect(whole.channel).toBe('none');
    const only: AnswerStreamEvent[] = [];
    for await (const event of whole) only.push(event);
    expect(only.map((e) => e.type)).toEqual(['final']);
    expect(fake.streamedCalls).toBe(2);
  });

  it('`ragline ask --stream` prints the tokens as they arrive', async () => {
    const hold = fake.holdStream(3);
    const child = spawn(
      process.execPath,
      [path.resolve(import.meta.dirname, '../../bin/ragline.mjs'), 'ask', '--stream', 'How do I export my data?'],
      {
        env: childEnv({
          TEMPORAL_ADDRESS: remote.env.address,
          RAGLINE_TASK_QUEUE: remote.taskQueue,
          REDIS_URL: redis.url,
        }),
      },
    );
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
    const firstTokens = streamChunks(ANSWER).slice(0, 3).join('');
    // The rest of the answer is held back until the CLI has printed the first three tokens.
    await new Promise<void>((resolve) => {
      child.stdout.on('data', (data: Buffer) => {
        stdout += data.toString();
        if (stdout.includes(firstTokens)) resolve();
      });
      child.once('exit', () => resolve());
    });
    expect(stdout.startsWith(firstTokens)).toBe(true);
    expect(stdout).not.toContain('Sources');
    hold.release();
    const code = await new Promise<number | null>((resolve) =>
      child.exitCode === null ? child.once('exit', resolve) : resolve(child.exitCode),
    );
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout.startsWith(ANSWER)).toBe(true);
    expect(stdout).toContain('Sources:');
  });
});

function response400Type(body: unknown): string | undefined {
  return (body as { error?: { type?: string } }).error?.type;
}
