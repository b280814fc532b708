import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import OpenAI from 'openai';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerQueryResult } from '../../contracts/query.js';
import { MAX_CHAT_BYTES, MAX_CHAT_MESSAGES } from '../../http/routes/chat.js';
import { createApiToken } from '../../lib/api-tokens.js';
import { childEnv, runCli } from '../support/cli.js';
import { startFakeOpenAI, streamChunks, type FakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, tempDir } from '../support/ragline.js';
import { freeMetricsPorts, freePort } from '../support/redis.js';
import { pythonOpenAI, runPythonClient } from '../support/python-openai.js';
import { startTestTemporal } from '../support/temporal.js';

// Made before the suite (a first run installs it, ~15 s); without pip's index the Python tests skip, saying why.
const python = await pythonOpenAI();
if ('skip' in python) console.warn(`openai Python package tests skipped: ${python.skip}`);
const pythonSkip = 'skip' in python;

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');
const ANSWER = 'Requests are limited per API key [1], and going over returns 429 with a Retry-After header [1].';

interface Annotation {
  type: string;
  url_citation: { url: string; title: string; start_index: number; end_index: number };
}
/** What ragline adds to OpenAI's shapes: the whole result, and on a stream chunk the reset flag. */
interface RaglineExtension {
  ragline?: AnswerQueryResult & { reset?: boolean };
}

/**
 * The official `openai` npm SDK against `ragline serve --worker` as a user starts it, with bearer tokens, on a
 * Temporal dev server; only the hosted LLM behind the worker is the fake.
 */
describe('OpenAI Chat Completions on ragline serve', () => {
  let env: TestWorkflowEnvironment;
  let fake: FakeOpenAI;
  let serve: ChildProcess;
  let dataDir: string;
  let baseURL: string;
  let stderr = '';
  const defaultToken = createApiToken('default');
  const acmeToken = createApiToken('acme');
  const ingestOnly = createApiToken('default', { scopes: ['ingest'] });
  const sdk = (apiKey = defaultToken.token) => new OpenAI({ apiKey, baseURL, maxRetries: 0 });

  beforeAll(async () => {
    [env, fake] = await Promise.all([startTestTemporal(), startFakeOpenAI()]);
    dataDir = await tempDir();
    const [httpPort, [metricsPort]] = await Promise.all([freePort(), freeMetricsPorts(1)]);
    const vars = childEnv({
      TEMPORAL_ADDRESS: env.address,
      RAGLINE_TASK_QUEUE: `openai-chat-${randomUUID()}`,
      RAGLINE_DATA_DIR: dataDir,
      RAGLINE_HTTP_PORT: String(httpPort),
      RAGLINE_METRICS_PORT: String(metricsPort),
      RAGLINE_API_TOKENS: [defaultToken.entry, acmeToken.entry, ingestOnly.entry].join(','),
      RAGLINE_API_RATE_LIMIT: '1000',
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
      // Broken streams are injected on purpose; the breaker must not open on them for the file's later queries.
      RAGLINE_BREAKER_LLM: 'minCalls=20,window=20',
    });
    baseURL = `http://127.0.0.1:${httpPort}/v1`;
    serve = spawn(process.execPath, [BIN, 'serve', '--worker'], { env: vars });
    await new Promise<void>((resolve, reject) => {
      serve.stderr?.on('data', (data: Buffer) => {
        stderr += data.toString();
        if (stderr.includes('streamed answers')) resolve();
      });
      serve.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const ingested = await runCli(['ingest', SAMPLE_CORPUS, '--json'], vars);
    expect(ingested.code).toBe(0);
    const acme = await runCli(['ingest', path.join(SAMPLE_CORPUS, 'webhooks.md'), '--tenant', 'acme', '--json'], vars);
    expect(acme.code).toBe(0);
  });
  afterAll(async () => {
    if (serve && serve.exitCode === null) {
      await new Promise((resolve) => {
        serve.once('exit', resolve);
        serve.kill('SIGTERM');
      });
    }
    await env?.teardown();
    await fake?.close();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    fake.reset();
    fake.mode = { kind: 'answer', content: ANSWER };
  });

  /** Every `[n]` annotation points at its marker in the content and at a source of the result. */
  const expectCitations = (content: string, annotations: Annotation[], result: AnswerQueryResult) => {
    const markers = [...content.matchAll(/\[\d+\]/g)];
    expect(annotations).toHaveLength(markers.length);
    for (const [i, annotation] of annotations.entries()) {
      const { url, title, start_index, end_index } = annotation.url_citation;
      expect(annotation.type).toBe('url_citation');
      expect(content.slice(start_index, end_index)).toBe(markers[i]![0]);
      const n = Number(markers[i]![0].slice(1, -1));
      const source = result.sources.find((s) => s.n === n)!;
      expect(title).toBe(source.title);
      expect(url).toBe(
        `ragline://${result.tenant}/documents/${encodeURIComponent(source.docId)}#${encodeURIComponent(source.chunkId)}`,
      );
    }
  };

  it('lists the ragline model', async () => {
    const models = await sdk().models.list();
    expect(models.data.map((m) => m.id)).toEqual(['ragline']);
  });

  it('answers a completion with the answer, url_citation annotations and the whole result', async () => {
    const completion = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: 'What are the API rate limits?' }],
      user: 'u-42',
    });
    const message = completion.choices[0]!.message;
    expect(message.content).toBe(ANSWER);
    expect(completion.object).toBe('chat.completion');
    const result = (completion as unknown as RaglineExtension).ragline!;
    expect(result).toMatchObject({ queryId: completion.id, tenant: 'default', answer: ANSWER, degraded: false });
    expect(result.sources.find((s) => s.n === 1)?.docId).toBe('api-rate-limits');
    expectCitations(ANSWER, message.annotations as Annotation[], result);
    expect(message.annotations).toHaveLength(2);
    expect(completion.usage?.total_tokens).toBe(
      (completion.usage?.prompt_tokens ?? 0) + (completion.usage?.completion_tokens ?? 0),
    );
    // The same workflow /v1/queries/:id reads.
    const state = await fetch(`${baseURL}/queries/${encodeURIComponent(completion.id)}`, {
      headers: { authorization: `Bearer ${defaultToken.token}` },
    });
    expect(await state.json()).toMatchObject({ status: 'completed', result: { answer: ANSWER } });
  });

  it('streams chunk deltas as the answer is written, annotations and usage before [DONE]', async () => {
    const hold = fake.holdStream(2);
    const stream = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: 'How are API requests rate limited?' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let annotations: Annotation[] | undefined;
    let result: AnswerQueryResult | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    let released = false;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      const choice = chunk.choices[0];
      if (choice?.delta.content) deltas.push(choice.delta.content);
      // Two tokens while the fake holds the rest: they came while the workflow ran, before any result.
      if (!released && deltas.length === 2) {
        expect(result).toBeUndefined();
        hold.release();
        released = true;
      }
      const delta = choice?.delta as { annotations?: Annotation[] } | undefined;
      if (delta?.annotations) annotations = delta.annotations;
      if (choice?.finish_reason) finish = choice.finish_reason;
      result ??= (chunk as unknown as RaglineExtension).ragline;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(released).toBe(true);
    expect(deltas.slice(0, 2)).toEqual(streamChunks(ANSWER).slice(0, 2));
    expect(deltas.join('')).toBe(ANSWER);
    expect(finish).toBe('stop');
    expect(result).toMatchObject({ answer: ANSWER, cache: { result: 'miss' } });
    expectCitations(ANSWER, annotations!, result!);
    expect(annotations).toHaveLength(2);
    expect(usage?.total_tokens).toBe((usage?.prompt_tokens ?? 0) + (usage?.completion_tokens ?? 0));
    expect(fake.streamedCalls).toBe(1);
  });

  it('streams a cached answer whole, with its citations', async () => {
    const question = 'What happens when I exceed the rate limit?';
    await sdk().chat.completions.create({ model: 'ragline', messages: [{ role: 'user', content: question }] });
    const stream = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: question }],
      stream: true,
    });
    let content = '';
    let annotations: Annotation[] = [];
    let result: AnswerQueryResult | undefined;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? '';
      annotations = (chunk.choices[0]?.delta as { annotations?: Annotation[] }).annotations ?? annotations;
      result ??= (chunk as unknown as RaglineExtension).ragline;
    }
    expect(result?.cache.result).toBe('hit');
    expect(content).toBe(ANSWER);
    expectCitations(content, annotations, result!);
    expect(fake.calls).toBe(1);
  });

  it('marks a reset when an attempt breaks mid-stream, so the client shows the answer of record', async () => {
    fake.script({ kind: 'stream-break', content: ANSWER, afterChunks: 4 });
    const stream = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: 'How do I reset my password?' }],
      stream: true,
    });
    let shown = '';
    let everything = '';
    let resets = 0;
    let result: AnswerQueryResult | undefined;
    for await (const chunk of stream) {
      const extension = (chunk as unknown as RaglineExtension).ragline;
      if (extension?.reset) {
        resets += 1;
        shown = '';
      }
      if (extension?.answer !== undefined) result = extension;
      shown += chunk.choices[0]?.delta.content ?? '';
      everything += chunk.choices[0]?.delta.content ?? '';
    }
    expect(resets).toBe(1);
    // The broken attempt's four tokens were sent, then dropped on the reset.
    expect(everything).toBe(streamChunks(ANSWER).slice(0, 4).join('') + ANSWER);
    expect(shown).toBe(result?.answer);
    expect(result).toMatchObject({ answer: ANSWER, degraded: false });
    expect(fake.streamedCalls).toBe(2);
  });

  it('makes a follow-up standalone from the earlier user turn before the caches and retrieval', async () => {
    fake.mode = { kind: 'answer', content: 'The reset link is valid for a limited time [1].' };
    const followUp = 'And how long is that link valid?';
    const conversation = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [
        { role: 'system', content: 'Answer briefly.' },
        { role: 'user', content: 'How do I reset my password?' },
        { role: 'assistant', content: 'Use the reset link on the sign-in page [1].' },
        { role: 'user', content: followUp },
      ],
    });
    const result = (conversation as unknown as RaglineExtension & { ragline: { question: string } }).ragline;
    expect(result.question).toBe(`${followUp} (reset password)`);
    expect(result.sources[0]?.docId).toBe('password-reset');
    // The caches keyed on the standalone question: /v1/query asked it finds the answer cached.
    const direct = await fetch(`${baseURL}/query`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${defaultToken.token}` },
      body: JSON.stringify({ query: result.question }),
    });
    expect(await direct.json()).toMatchObject({ answer: result.answer, cache: { result: 'hit' } });
    // Asked alone, the same words are searched as they stand and report themselves unchanged.
    const alone = await sdk().chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: followUp }],
    });
    const aloneResult = (alone as unknown as { ragline: AnswerQueryResult & { question: string } }).ragline;
    expect(aloneResult.question).toBe(followUp);
    expect(aloneResult.queryId).not.toBe(result.queryId);
  });

  it("answers from the token's tenant only", async () => {
    fake.mode = { kind: 'answer', content: 'Failed deliveries are retried with backoff [1].' };
    const completion = await sdk(acmeToken.token).chat.completions.create({
      model: 'ragline',
      messages: [{ role: 'user', content: 'What are the API rate limits and how do webhooks retry?' }],
    });
    const result = (completion as unknown as RaglineExtension).ragline!;
    expect(result.tenant).toBe('acme');
    expect(new Set(result.sources.map((s) => s.docId))).toEqual(new Set(['webhooks']));
    const urls = (completion.choices[0]!.message.annotations ?? []).map((a) => a.url_citation.url);
    expect(urls.length).toBeGreaterThan(0);
    for (const url of urls) expect(url.startsWith('ragline://acme/documents/webhooks#')).toBe(true);
  });

  it('refuses no token, a wrong token and a token without the query scope, through the SDK', async () => {
    const ask = (client: OpenAI) =>
      client.chat.completions.create({ model: 'ragline', messages: [{ role: 'user', content: 'Rate limits?' }] });
    const missing = await fetch(`${baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'ragline', messages: [{ role: 'user', content: 'Rate limits?' }] }),
    });
    expect(missing.status).toBe(401);
    await expect(ask(sdk('rgl_not-a-real-token'))).rejects.toMatchObject({ status: 401 });
    await expect(ask(sdk(ingestOnly.token))).rejects.toMatchObject({
      status: 403,
      message: expect.stringContaining('query'),
    });
    await expect(sdk(ingestOnly.token).models.list()).rejects.toMatchObject({ status: 403 });
    await expect(sdk('rgl_not-a-real-token').models.list()).rejects.toMatchObject({ status: 401 });
    expect(fake.calls).toBe(0);
  });

  it('names the unsupported field in a 400: n > 1, tools, image parts, an unknown model', async () => {
    const client = sdk();
    const question = { role: 'user' as const, content: 'What are the API rate limits?' };
    await expect(
      client.chat.completions.create({ model: 'ragline', messages: [question], n: 2 }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('body.n') });
    const tool = { type: 'function' as const, function: { name: 'lookup', parameters: {} } };
    await expect(
      client.chat.completions.create({ model: 'ragline', messages: [question], tools: [tool] }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('tools') });
    await expect(
      client.chat.completions.create({
        model: 'ragline',
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'What is in this picture?' },
              { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            ],
          },
        ],
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringContaining('messages[0].content[1]') });
    await expect(client.chat.completions.create({ model: 'gpt-4o', messages: [question] })).rejects.toMatchObject({
      status: 404,
      message: expect.stringContaining('gpt-4o'),
    });
    expect(fake.calls).toBe(0);
  });

  it('refuses a conversation past its bounds in bytes or turns with a 400 naming the bound', async () => {
    const client = sdk();
    const long = 'x'.repeat(8000);
    const big = Array.from({ length: Math.ceil(MAX_CHAT_BYTES / 8000) + 1 }, (_, i) => ({
      role: i % 2 === 0 ? ('user' as const) : ('assistant' as const),
      content: long,
    }));
    if (big.at(-1)!.role !== 'user') big.push({ role: 'user', content: 'And the limits?' });
    await expect(client.chat.completions.create({ model: 'ragline', messages: big })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining(`the maximum is ${MAX_CHAT_BYTES}`),
    });
    const many = Array.from({ length: MAX_CHAT_MESSAGES + 1 }, () => ({ role: 'user' as const, content: 'hi' }));
    await expect(client.chat.completions.create({ model: 'ragline', messages: many })).rejects.toMatchObject({
      status: 400,
      message: expect.stringContaining(`the maximum is ${MAX_CHAT_MESSAGES}`),
    });
    expect(fake.calls).toBe(0);
  });

  describe('through the official openai Python package', () => {
    const py = (apiKey: string, scenario: Parameters<typeof runPythonClient>[3]) =>
      runPythonClient((python as { python: string }).python, baseURL, apiKey, scenario);

    it.skipIf(pythonSkip)('reads a completion, its citations and the model list', async () => {
      const out = (await py(defaultToken.token, 'complete')) as {
        id: string;
        content: string;
        annotations: Array<{ type: string; url: string; title: string; start_index: number; end_index: number }>;
        ragline: AnswerQueryResult;
        models: string[];
      };
      expect(out.models).toEqual(['ragline']);
      expect(out.content).toBe(ANSWER);
      expect(out.ragline).toMatchObject({ queryId: out.id, answer: ANSWER, tenant: 'default' });
      expectCitations(
        out.content,
        out.annotations.map(({ type, ...url_citation }) => ({ type, url_citation })),
        out.ragline,
      );
      expect(out.annotations).toHaveLength(2);
    });

    it.skipIf(pythonSkip)(
      'streams, with the citations and usage before the end, and a follow-up made standalone',
      async () => {
        fake.mode = { kind: 'stream-break', content: ANSWER, afterChunks: 3 };
        fake.script({ kind: 'stream-break', content: ANSWER, afterChunks: 3 }, { kind: 'answer', content: ANSWER });
        const out = (await py(defaultToken.token, 'stream')) as {
          content: string;
          annotations: Annotation[];
          ragline: AnswerQueryResult;
          usage: { total_tokens: number } | null;
        };
        // The first attempt broke after three tokens: what the client shows after the reset is the answer of record.
        expect(fake.streamedCalls).toBe(2);
        expect(out.content).toBe(ANSWER);
        expect(out.ragline).toMatchObject({ answer: ANSWER });
        expectCitations(out.content, out.annotations, out.ragline);
        expect(out.usage?.total_tokens).toBeGreaterThanOrEqual(0);
        fake.mode = { kind: 'answer', content: ANSWER };
        const followUp = (await py(defaultToken.token, 'follow-up')) as {
          ragline: AnswerQueryResult & { question: string };
        };
        expect(followUp.ragline.question).toBe('And how long is that link valid? (reset password)');
        expect(followUp.ragline.sources[0]?.docId).toBe('password-reset');
      },
    );

    it.skipIf(pythonSkip)(
      'gets the right errors: wrong token, no query scope, unsupported field, oversized conversation',
      async () => {
        const wrong = (await py('rgl_not-a-real-token', 'complete').catch((error: { stderr?: string }) => ({
          stderr: error.stderr ?? '',
        }))) as { stderr: string };
        expect(wrong.stderr).toContain('AuthenticationError');
        const scope = (await py(ingestOnly.token, 'complete').catch((error: { stderr?: string }) => ({
          stderr: error.stderr ?? '',
        }))) as { stderr: string };
        expect(scope.stderr).toContain('PermissionDeniedError');
        const out = (await py(defaultToken.token, 'errors')) as Record<string, { status: number; message: string }>;
        expect(out.unsupported).toMatchObject({ status: 400, message: expect.stringContaining('body.n') });
        expect(out.tools).toMatchObject({ status: 400, message: expect.stringContaining('tools') });
        expect(out.oversized).toMatchObject({
          status: 400,
          message: expect.stringContaining(`the maximum is ${MAX_CHAT_BYTES}`),
        });
        expect(fake.calls).toBe(0);
      },
    );
  });
});
