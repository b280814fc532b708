import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ContextChunk } from '../../lib/domain.js';

/**
 * A local OpenAI-compatible endpoint over real HTTP, so tests exercise the real `openai` client end to end: its
 * status handling, header parsing, timeouts and JSON decoding. Each chat completion is answered by the next
 * scripted reply, or by `mode` when the script is empty.
 */

export type FakeReply =
  /** A normal completion; `content` defaults to an answer citing [1]. `usage: null` leaves usage out. */
  | {
      kind: 'answer';
      content?: string;
      usage?: { prompt_tokens: number; completion_tokens: number } | null;
      model?: string;
      finishReason?: string;
      /** How a streamed answer is cut into content deltas; by default one per word. Joined, they must equal `content`. */
      chunks?: string[];
    }
  /** A streamed answer whose connection drops after `afterChunks` content deltas (non-streamed: half a JSON body). */
  | { kind: 'stream-break'; content?: string; afterChunks?: number }
  /** 429 with Retry-After (seconds or an HTTP date) and/or retry-after-ms. */
  | { kind: 'rate-limit'; retryAfter?: string; retryAfterMs?: string; code?: string }
  | { kind: 'server-error'; status?: number }
  /** 200 with `Content-Type: application/json` and a body that is not JSON. */
  | { kind: 'malformed' }
  /** 200 with well-formed JSON but no choices. */
  | { kind: 'empty-choices' }
  /** Never answers: no status line, no headers. */
  | { kind: 'hang' }
  /** Sends 200 headers, then never sends the body. */
  | { kind: 'stall-body' }
  | { kind: 'context-length' }
  | { kind: 'bad-request'; message?: string };

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  /** When it arrived, from Date.now(). */
  at: number;
  /** Parsed JSON body of a chat completion; undefined for GETs. */
  body: ChatCompletionBody | undefined;
}

export interface ChatCompletionBody {
  model: string;
  messages: Array<{ role: string; content: string }>;
  temperature?: number;
  max_tokens?: number;
  [key: string]: unknown;
}

export interface FakeOpenAIOptions {
  /** Models the server knows; others get 404. @default ['fake-model'] */
  models?: string[];
  /** When set, requests must carry `Authorization: Bearer <requireKey>` or get 401. */
  requireKey?: string;
}

export interface FakeOpenAI {
  /** Base URL to give the client, ending in /v1. */
  readonly baseURL: string;
  /** Reply used when the script is empty. */
  mode: FakeReply;
  models: string[];
  requireKey: string | undefined;
  /** Chat-completion requests received, in order. */
  readonly requests: RecordedRequest[];
  /** Every request received, model lookups included. */
  readonly allRequests: RecordedRequest[];
  /** Number of chat-completion requests received. */
  readonly calls: number;
  /** Queues replies for the next chat completions, ahead of `mode`. */
  script(...replies: FakeReply[]): void;
  /**
   * Holds the next streamed answer after `afterChunks` content deltas until `release()`: `reached` resolves once
   * they are sent, so a test knows tokens are in flight without sleeping.
   */
  holdStream(afterChunks: number): { reached: Promise<void>; release(): void };
  /** Streamed (`stream: true`) chat-completion requests received. */
  readonly streamedCalls: number;
  /** Pause between the content deltas of a streamed answer, as a model's decoding pace (a whole answer waits as long). @default 0 */
  streamDelayMs: number;
  /** When each content delta of the latest streamed answers was written (performance.now()), one list per answer. */
  readonly streamWrites: number[][];
  /** `/v1/embeddings` requests received, in order (their `body.input` is the list of texts). */
  readonly embeddingRequests: RecordedRequest[];
  /** Every text sent to `/v1/embeddings`, in order. */
  readonly embeddedTexts: string[];
  /** How embedding requests are answered: vectors, a 503, or a 429 with Retry-After 1. @default 'vectors' */
  embeddingMode: 'vectors' | 'server-error' | 'rate-limit';
  /** Pause before answering each embedding request, as a busy model server. @default 0 */
  embeddingDelayMs: number;
  /**
   * Holds embedding requests (those whose texts `which` selects; by default all) until `release()`; `reached`
   * resolves when the first is held. Texts of a request whose client went away meanwhile are not counted.
   */
  holdEmbeddings(which?: (texts: string[]) => boolean): { reached: Promise<void>; release(): void };
  /** Back to a normal answer, empty script and records, options as started. */
  reset(): void;
  close(): Promise<void>;
}

/** Two retrieved chunks to ask a generator about; the fake's default answer cites the first. */
export const TWO_CHUNKS: ContextChunk[] = [
  {
    n: 1,
    chunkId: 'warranty#0',
    docId: 'warranty',
    title: 'Warranty',
    text: 'The warranty lasts two years.',
    score: 3,
  },
  {
    n: 2,
    chunkId: 'returns#0',
    docId: 'returns',
    title: 'Returns',
    text: 'Returns are accepted for 30 days.',
    score: 2,
  },
];

export const DEFAULT_FAKE_ANSWER = 'The answer is in the first document [1].';

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** Content deltas of a streamed answer: one per word with its leading space, so they join back to the text. */
export function streamChunks(content: string): string[] {
  return content.match(/\s*\S+/g) ?? [content];
}

interface StreamHold {
  afterChunks: number;
  reached: () => void;
  released: Promise<void>;
}

/**
 * A deterministic embedding: words hashed into `dimensions` buckets, salted by the model, so texts that share words
 * are near and two models give unrelated vectors for the same text.
 */
export function fakeEmbedding(model: string, text: string, dimensions: number): number[] {
  const vector = new Array<number>(dimensions).fill(0.01);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    let hash = 2166136261;
    for (const char of `${model}\0${word}`) hash = Math.imul(hash ^ char.charCodeAt(0), 16777619) >>> 0;
    vector[hash % dimensions]! += 1;
  }
  return vector;
}

function apiError(res: ServerResponse, status: number, message: string, type: string, code: string | null): void {
  sendJson(res, status, { error: { message, type, param: null, code } });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function startFakeOpenAI(options: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const initialModels = options.models ?? ['fake-model'];
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  const allRequests: RecordedRequest[] = [];
  let completionId = 0;
  const holds: StreamHold[] = [];
  const embeddingRequests: RecordedRequest[] = [];
  const embeddedTexts: string[] = [];
  let embeddingGate: { promise: Promise<void>; reached: () => void; which: (texts: string[]) => boolean } | undefined;

  const fake = {
    baseURL: '',
    mode: { kind: 'answer' } as FakeReply,
    models: [...initialModels],
    requireKey: options.requireKey,
    requests,
    allRequests,
    get calls() {
      return requests.length;
    },
    streamDelayMs: 0,
    streamWrites: [] as number[][],
    embeddingRequests,
    embeddedTexts,
    embeddingMode: 'vectors' as FakeOpenAI['embeddingMode'],
    embeddingDelayMs: 0,
    holdEmbeddings(which: (texts: string[]) => boolean = () => true) {
      let release!: () => void;
      let reached!: () => void;
      const promise = new Promise<void>((resolve) => (release = resolve));
      const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
      const gate = { promise, reached, which };
      embeddingGate = gate;
      return {
        reached: reachedPromise,
        release: () => {
          if (embeddingGate === gate) embeddingGate = undefined;
          release();
        },
      };
    },
    get streamedCalls() {
      return requests.filter((r) => r.body?.stream === true).length;
    },
    script(...replies: FakeReply[]) {
      queue.push(...replies);
    },
    holdStream(afterChunks: number) {
      let reached!: () => void;
      let release!: () => void;
      const hold = {
        afterChunks,
        reached: () => reached(),
        released: new Promise<void>((resolve) => (release = resolve)),
      };
      const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
      holds.push(hold);
      return { reached: reachedPromise, release };
    },
    reset() {
      queue.length = 0;
      holds.length = 0;
      fake.streamDelayMs = 0;
      fake.streamWrites.length = 0;
      requests.length = 0;
      allRequests.length = 0;
      embeddingRequests.length = 0;
      embeddedTexts.length = 0;
      fake.embeddingMode = 'vectors';
      fake.embeddingDelayMs = 0;
      embeddingGate = undefined;
      fake.mode = { kind: 'answer' };
      fake.models = [...initialModels];
      fake.requireKey = options.requireKey;
    },
    close: async () => {
      // Hanging replies hold their sockets open; drop them or close() would wait for ever.
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
    },
  };

  /** The real wire format: `data: <chunk JSON>` events, a usage chunk when asked for, then `data: [DONE]`. */
  const streamAnswer = async (
    res: ServerResponse,
    body: ChatCompletionBody,
    reply: Extract<FakeReply, { kind: 'answer' | 'stream-break' }>,
  ): Promise<void> => {
    completionId += 1;
    const id = `chatcmpl-fake-${completionId}`;
    const content = reply.content ?? DEFAULT_FAKE_ANSWER;
    const model = (reply.kind === 'answer' ? reply.model : undefined) ?? body.model;
    const includeUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const chunk = (choices: unknown[], extra: object = {}) =>
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created: Math.floor(Date.now() / 1000),
        model,
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      })}\n\n`;
    // Each event is flushed before the next, so a client sees deltas one by one and a drop lands after them.
    const send = (data: string) => new Promise<void>((resolve) => res.write(data, () => resolve()));
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    await send(chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]));
    const deltas = (reply.kind === 'answer' ? reply.chunks : undefined) ?? streamChunks(content);
    const hold = holds.shift();
    const writes: number[] = [];
    fake.streamWrites.push(writes);
    for (const [i, delta] of deltas.entries()) {
      if (fake.streamDelayMs > 0 && i > 0) await new Promise((resolve) => setTimeout(resolve, fake.streamDelayMs));
      if (reply.kind === 'stream-break' && i === (reply.afterChunks ?? 2)) {
        res.destroy();
        return;
      }
      if (hold && i === hold.afterChunks) {
        hold.reached();
        await hold.released;
      }
      writes.push(performance.now());
      await send(chunk([{ index: 0, delta: { content: delta }, finish_reason: null, logprobs: null }]));
    }
    if (hold && deltas.length <= hold.afterChunks) hold.reached();
    const finishReason = (reply.kind === 'answer' ? reply.finishReason : undefined) ?? 'stop';
    await send(chunk([{ index: 0, delta: {}, finish_reason: finishReason, logprobs: null }]));
    const usage =
      reply.kind === 'answer' && reply.usage !== undefined
        ? reply.usage
        : { prompt_tokens: 100, completion_tokens: 20 };
    if (includeUsage && usage !== null) {
      await send(chunk([], { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }));
    }
    res.end('data: [DONE]\n\n');
  };

  const answer = (res: ServerResponse, body: ChatCompletionBody, reply: FakeReply, paced = false): void => {
    // Errors are JSON whether or not the request streams, as OpenAI's are; only successful bodies change format.
    if (body.stream === true) {
      switch (reply.kind) {
        case 'answer':
        case 'stream-break':
          void streamAnswer(res, body, reply);
          return;
        case 'malformed':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end('data: {"id": "chatcmpl-broken", "choices": [ {"delta": \n\n');
          return;
        case 'empty-choices':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.end(
            `data: ${JSON.stringify({ id: 'chatcmpl-empty', object: 'chat.completion.chunk', model: body.model, choices: [] })}\n\ndata: [DONE]\n\n`,
          );
          return;
        case 'stall-body':
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.flushHeaders();
          return;
        default:
          break;
      }
    }
    switch (reply.kind) {
      case 'answer': {
        // A paced model takes as long to write a whole answer as to stream it.
        const writing = fake.streamDelayMs * (streamChunks(reply.content ?? DEFAULT_FAKE_ANSWER).length - 1);
        if (!paced && writing > 0) {
          setTimeout(() => answer(res, body, reply, true), writing);
          return;
        }
        completionId += 1;
        const usage = reply.usage === undefined ? { prompt_tokens: 100, completion_tokens: 20 } : reply.usage;
        sendJson(res, 200, {
          id: `chatcmpl-fake-${completionId}`,
          object: 'chat.completion',
          created: Math.floor(Date.now() / 1000),
          model: reply.model ?? body.model,
          choices: [
            {
              index: 0,
              message: { role: 'assistant', content: reply.content ?? DEFAULT_FAKE_ANSWER, refusal: null },
              finish_reason: reply.finishReason ?? 'stop',
              logprobs: null,
            },
          ],
          ...(usage === null
            ? {}
            : { usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens } }),
        });
        return;
      }
      case 'rate-limit': {
        const headers: Record<string, string> = {};
        if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter;
        if (reply.retryAfterMs !== undefined) headers['retry-after-ms'] = reply.retryAfterMs;
        sendJson(
          res,
          429,
          {
            error: {
              message: 'Rate limit reached',
              type: 'requests',
              param: null,
              code: reply.code ?? 'rate_limit_exceeded',
            },
          },
          headers,
        );
        return;
      }
      case 'server-error':
        apiError(
          res,
          reply.status ?? 500,
          'The server had an error while processing your request.',
          'server_error',
          null,
        );
        return;
      case 'malformed':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"id": "chatcmpl-broken", "choices": [ {"message": ');
        return;
      case 'stream-break':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"id": "chatcmpl-broken", "choices": [');
        res.destroy();
        return;
      case 'empty-choices':
        sendJson(res, 200, { id: 'chatcmpl-empty', object: 'chat.completion', model: body.model, choices: [] });
        return;
      case 'hang':
        return;
      case 'stall-body':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.flushHeaders();
        return;
      case 'context-length':
        apiError(
          res,
          400,
          "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
          'invalid_request_error',
          'context_length_exceeded',
        );
        return;
      case 'bad-request':
        apiError(res, 400, reply.message ?? "Invalid value for 'temperature'.", 'invalid_request_error', null);
        return;
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const raw = req.method === 'POST' ? await readBody(req) : '';
      let body: ChatCompletionBody | undefined;
      try {
        body = raw ? (JSON.parse(raw) as ChatCompletionBody) : undefined;
      } catch {
        apiError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error', null);
        return;
      }
      const record: RecordedRequest = {
        method: req.method ?? 'GET',
        path,
        authorization: req.headers.authorization,
        at: Date.now(),
        body,
      };
      allRequests.push(record);

      if (fake.requireKey !== undefined && req.headers.authorization !== `Bearer ${fake.requireKey}`) {
        if (path === '/v1/chat/completions') requests.push(record);
        const message = req.headers.authorization
          ? 'Incorrect API key provided.'
          : "You didn't provide an API key. You need to provide your API key in an Authorization header.";
        apiError(res, 401, message, 'invalid_request_error', req.headers.authorization ? 'invalid_api_key' : null);
        return;
      }

      if (req.method === 'GET' && path === '/v1/models') {
        sendJson(res, 200, {
          object: 'list',
          data: fake.models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake' })),
        });
        return;
      }
      const modelMatch = /^\/v1\/models\/(.+)$/.exec(path);
      if (req.method === 'GET' && modelMatch?.[1] !== undefined) {
        const id = decodeURIComponent(modelMatch[1]);
        if (fake.models.includes(id)) sendJson(res, 200, { id, object: 'model', created: 0, owned_by: 'fake' });
        else apiError(res, 404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found');
        return;
      }
      if (req.method === 'POST' && path === '/v1/embeddings' && body) {
        embeddingRequests.push(record);
        const embeddingBody = body as unknown as { model: string; input: string | string[]; dimensions?: number };
        const texts = typeof embeddingBody.input === 'string' ? [embeddingBody.input] : embeddingBody.input;
        const gate = embeddingGate;
        if (gate?.which(texts)) {
          gate.reached();
          await gate.promise;
        }
        if (fake.embeddingDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.embeddingDelayMs));
        if (fake.embeddingMode === 'server-error') {
          apiError(res, 503, 'The embedding server is overloaded.', 'server_error', null);
          return;
        }
        if (fake.embeddingMode === 'rate-limit') {
          sendJson(
            res,
            429,
            { error: { message: 'Rate limit reached', type: 'requests', param: null, code: 'rate_limit_exceeded' } },
            { 'retry-after': '1' },
          );
          return;
        }
        if (res.socket?.destroyed ?? true) return;
        embeddedTexts.push(...texts);
        const dimensions = embeddingBody.dimensions ?? 16;
        sendJson(res, 200, {
          object: 'list',
          model: embeddingBody.model,
          usage: { prompt_tokens: texts.length, total_tokens: texts.length },
          data: texts.map((text, index) => ({
            object: 'embedding',
            index,
            embedding: fakeEmbedding(embeddingBody.model, text, dimensions),
          })),
        });
        return;
      }
      if (req.method === 'POST' && path === '/v1/chat/completions' && body) {
        requests.push(record);
        if (!fake.models.includes(body.model)) {
          apiError(res, 404, `The model '${body.model}' does not exist`, 'invalid_request_error', 'model_not_found');
          return;
        }
        answer(res, body, queue.shift() ?? fake.mode);
        return;
      }
      apiError(res, 404, `Unknown path ${req.method} ${path}`, 'invalid_request_error', null);
    })();
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  fake.baseURL = `http://127.0.0.1:${port}/v1`;
  return fake;
}
