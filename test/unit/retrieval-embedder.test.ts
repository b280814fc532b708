import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import {
  embedThroughCache,
  nameDocuments,
  type EmbeddingCache,
  type EmbeddingCacheKey,
} from '../../lib/retrieval/embedder.js';
import { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import { DependencyBreaker } from '../../lib/resilience/breakers.js';

/**
 * An OpenAI client whose HTTP layer is a function, so the SDK's own parsing and error classes are exercised. It
 * records what each request carried and how many were in flight, and takes `msPerChar` for each request.
 */
function clientAnswering(respond: (body: { input: string[] }) => Response, msPerChar = 0) {
  const requests: string[][] = [];
  let inFlight = 0;
  let mostInFlight = 0;
  const client = new OpenAI({
    apiKey: 'test',
    baseURL: 'http://embeddings.test/v1',
    maxRetries: 0,
    fetch: async (_url, init) => {
      const body = JSON.parse(String(init?.body)) as { input: string[] };
      requests.push(body.input);
      inFlight += 1;
      mostInFlight = Math.max(mostInFlight, inFlight);
      const chars = body.input.reduce((sum, text) => sum + text.length, 0);
      if (msPerChar > 0) await new Promise((resolve) => setTimeout(resolve, chars * msPerChar));
      inFlight -= 1;
      return respond(body);
    },
  });
  return { client, requests, mostInFlight: () => mostInFlight };
}

const vectorsFor = (body: { input: string[] }) =>
  Response.json({
    object: 'list',
    model: 'm',
    usage: { prompt_tokens: 1, total_tokens: 1 },
    // Reversed on purpose: `index` decides the order, not the array position.
    data: body.input.map((text, index) => ({ object: 'embedding', index, embedding: [text.length, index] })).reverse(),
  });

function memoryCache(): EmbeddingCache & { entries: Map<string, number[]> } {
  const entries = new Map<string, number[]>();
  const key = (k: EmbeddingCacheKey) => `${k.model}|${k.dimensions}|${k.text}`;
  return {
    entries,
    get: async (k) => entries.get(key(k)),
    set: async (k, vector) => void entries.set(key(k), vector),
  };
}

describe('OpenAIEmbedder', () => {
  it('batches requests and returns vectors in input order', async () => {
    const { client, requests } = clientAnswering(vectorsFor);
    const embedder = new OpenAIEmbedder({ model: 'm', dimensions: 2, timeoutMs: 1000, batchSize: 2 }, { client });
    expect(await embedder.embed(['a', 'bb', 'ccc'])).toEqual([
      [1, 0],
      [2, 1],
      [3, 0],
    ]);
    expect(requests).toEqual([['a', 'bb'], ['ccc']]);
  });

  it('turns a 429 into a RateLimited error carrying Retry-After', async () => {
    const { client } = clientAnswering(
      () =>
        new Response(JSON.stringify({ error: { message: 'slow down', type: 'rate_limit' } }), {
          status: 429,
          headers: { 'content-type': 'application/json', 'retry-after': '3' },
        }),
    );
    const embedder = new OpenAIEmbedder({ model: 'm', dimensions: 2, timeoutMs: 1000 }, { client });
    const error = await embedder.embed(['a']).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RaglineError);
    expect((error as RaglineError).type).toBe(ErrorType.RateLimited);
    expect((error as RaglineError).retryAfterMs).toBe(3000);
  });

  it('rejects vectors of the wrong size as a bad response', async () => {
    const { client } = clientAnswering(vectorsFor);
    const embedder = new OpenAIEmbedder({ model: 'm', dimensions: 3, timeoutMs: 1000 }, { client });
    await expect(embedder.embed(['a'])).rejects.toMatchObject({ type: ErrorType.BadResponse });
  });

  it.each([
    [
      'fewer vectors than texts',
      (body: { input: string[] }) => body.input.slice(1).map(() => [1, 2]),
      /1 vectors for 2 texts/,
    ],
    // JSON has no NaN: a server's NaN arrives as null.
    ['NaN values', (body: { input: string[] }) => body.input.map(() => [Number.NaN, 1]), /NaN or infinite/],
  ])('rejects %s as a bad response naming the endpoint, caching nothing', async (_label, vectors, message) => {
    const { client } = clientAnswering((body) =>
      Response.json({
        object: 'list',
        model: 'm',
        usage: { prompt_tokens: 1, total_tokens: 1 },
        data: vectors(body).map((embedding, index) => ({ object: 'embedding', index, embedding })),
      }),
    );
    const cache = memoryCache();
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, baseURL: 'http://embeddings.test/v1' },
      { client, cache },
    );
    const error = await embedder.embed(['a', 'bb']).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ type: ErrorType.BadResponse });
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain('http://embeddings.test/v1');
    expect(cache.entries.size).toBe(0);
  });

  it('asks the API only for texts the cache lacks, once each', async () => {
    const { client, requests } = clientAnswering(vectorsFor);
    const cache = memoryCache();
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, baseURL: 'http://embeddings.test/v1' },
      { client, cache },
    );
    await embedder.embed(['a']);
    expect(await embedder.embed(['a', 'bb', 'bb'])).toEqual([
      [1, 0],
      [2, 0],
      [2, 0],
    ]);
    expect(requests).toEqual([['a'], ['bb']]);
    expect([...cache.entries.keys()]).toEqual(['m|2|a', 'm|2|bb']);
  });
});

describe('embedThroughCache', () => {
  it('treats a failing cache as a miss', async () => {
    const broken: EmbeddingCache = {
      get: async () => Promise.reject(new Error('down')),
      set: async () => Promise.reject(new Error('down')),
    };
    const vectors = await embedThroughCache(['x'], { model: 'm', dimensions: 1 }, broken, (texts, keep) =>
      keep(
        texts,
        texts.map(() => [7]),
      ),
    );
    expect(vectors).toEqual([[7]]);
  });
});

describe('asymmetric embedding modes', () => {
  it('asks for queries and documents by model name, input_type and prefix, caching each mode apart', async () => {
    const bodies: { model: string; input: string[]; input_type?: string; dimensions?: number }[] = [];
    const client = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://embeddings.test/v1',
      maxRetries: 0,
      fetch: async (_url, init) => {
        const body = JSON.parse(String(init?.body)) as (typeof bodies)[number];
        bodies.push(body);
        return vectorsFor(body);
      },
    });
    const cache = memoryCache();
    const embedder = new OpenAIEmbedder(
      {
        model: 'm',
        dimensions: 2,
        timeoutMs: 1000,
        sendDimensions: false,
        queryMode: { model: 'm-query', prefix: 'query: ' },
        documentMode: { inputType: 'passage', prefix: 'passage: ' },
      },
      { client, cache },
    );
    expect(await embedder.embed(['ab'], 'query')).toEqual([[9, 0]]);
    expect(await embedder.embed(['ab'], 'document')).toEqual([[11, 0]]);
    expect(await embedder.embed(['ab'], 'query')).toEqual([[9, 0]]);
    expect(bodies).toEqual([
      { model: 'm-query', input: ['query: ab'], encoding_format: 'float' },
      { model: 'm', input: ['passage: ab'], encoding_format: 'float', input_type: 'passage' },
    ]);
    expect(cache.entries.size).toBe(2);
    expect(embedder.identity).toBe('m|passage|passage: |2');
  });
});

describe('OpenAIEmbedder at corpus size', () => {
  const slowServer = (msPerChar: number, answer: (body: { input: string[] }) => Response = vectorsFor) =>
    clientAnswering(answer, msPerChar);
  const texts = (n: number, length: number) =>
    Array.from({ length: n }, (_, i) => `${i}`.padEnd(length, String.fromCharCode(97 + (i % 26))));

  it('sends a big call as requests bounded by count and characters, at most `concurrency` in flight', async () => {
    const server = slowServer(0.01);
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, batchSize: 4, batchChars: 250, concurrency: 2 },
      { client: server.client },
    );
    const input = [...texts(10, 100), ...texts(6, 10)];
    const vectors = await embedder.embed(input);
    expect(vectors.map((v) => v[0])).toEqual(input.map((text) => text.length));
    for (const request of server.requests) {
      expect(request.length).toBeLessThanOrEqual(4);
      expect(request.join('').length).toBeLessThanOrEqual(250);
    }
    expect(server.requests.flat().sort()).toEqual([...input].sort());
    expect(server.mostInFlight()).toBe(2);
  });

  it('reports progress as requests complete, cache hits first, over distinct texts', async () => {
    const server = slowServer(0);
    const cache = memoryCache();
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, batchSize: 2, concurrency: 1 },
      { client: server.client, cache },
    );
    await embedder.embed(['a']);
    const seen: Array<[number, number]> = [];
    await embedder.embed(['a', 'b', 'c', 'd', 'e', 'b'], 'document', {
      onProgress: (done, total) => seen.push([done, total]),
    });
    expect(seen).toEqual([
      [1, 5],
      [3, 5],
      [5, 5],
    ]);
  });

  it('keeps what was embedded before a failure, so a retry asks only for the rest', async () => {
    let failOn = 'c0';
    const server = slowServer(0, (body) =>
      body.input.includes(failOn) ? new Response('{"error":{"message":"boom"}}', { status: 503 }) : vectorsFor(body),
    );
    const cache = memoryCache();
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, batchSize: 2, concurrency: 1 },
      { client: server.client, cache },
    );
    const input = ['a0', 'b0', 'c0', 'd0', 'e0', 'f0'];
    await expect(embedder.embed(input)).rejects.toMatchObject({ type: ErrorType.Unavailable });
    // One at a time: the failing second request stops the third from being sent.
    expect(server.requests).toEqual([
      ['a0', 'b0'],
      ['c0', 'd0'],
    ]);
    failOn = 'none';
    server.requests.length = 0;
    expect((await embedder.embed(input)).length).toBe(6);
    expect(server.requests).toEqual([
      ['c0', 'd0'],
      ['e0', 'f0'],
    ]);
  });

  it('halves a request the server calls too large (413) until it fits; a single text too large is ContextLength', async () => {
    const server = slowServer(0, (body) =>
      body.input.length > 1 && body.input.join('').length > 6
        ? new Response('{"error":{"message":"payload too large"}}', { status: 413 })
        : body.input.some((text) => text.length > 6)
          ? new Response('{"error":{"message":"payload too large"}}', { status: 413 })
          : vectorsFor(body),
    );
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 1000, batchSize: 8 },
      { client: server.client },
    );
    expect((await embedder.embed(['aa', 'bb', 'cc', 'dd'])).map((v) => v[0])).toEqual([2, 2, 2, 2]);
    expect(server.requests).toEqual([
      ['aa', 'bb', 'cc', 'dd'],
      ['aa', 'bb'],
      ['cc', 'dd'],
    ]);
    await expect(embedder.embed(['ee', 'seven77'])).rejects.toMatchObject({ type: ErrorType.ContextLength });
  });

  it('runs each request, not each call, through the guard with a timeout that fits its size', async () => {
    const server = slowServer(0);
    const timeouts: Array<number | undefined> = [];
    const embedder = new OpenAIEmbedder(
      {
        model: 'm',
        dimensions: 2,
        timeoutMs: 500,
        batchSize: 100,
        batchChars: 1000,
        concurrency: 2,
        timeoutPer1kCharsMs: 1000,
      },
      {
        client: server.client,
        guard: {
          run: (fn, options) => {
            timeouts.push(options.timeoutMs);
            return fn();
          },
        },
      },
    );
    await embedder.embed([...texts(10, 100), 'x'.repeat(50)]);
    // 500 ms, plus 1 ms a character for its own and for the largest other request of the call (1,000) that may
    // be ahead of it; a call of one short text gets the base and its own characters.
    expect(timeouts).toEqual([2500, 1550]);
    timeouts.length = 0;
    await embedder.embed(['one question'], 'query');
    expect(timeouts).toEqual([512]);
  });

  it('a slow embedder answering right-sized requests keeps its breaker closed; one that is down opens it', async () => {
    const breaker = new DependencyBreaker('embedder', { failureRatio: 0.5, window: 4, minCalls: 4, openMs: 60_000 });
    // 0.2 ms a character: one request of all 4,000 characters would take 800 ms, past a flat 300 ms timeout.
    const slow = slowServer(0.2);
    const embedder = new OpenAIEmbedder(
      { model: 'm', dimensions: 2, timeoutMs: 300, batchChars: 500, concurrency: 1, timeoutPer1kCharsMs: 400 },
      { client: slow.client, guard: breaker },
    );
    expect((await embedder.embed(texts(40, 100))).length).toBe(40);
    expect(slow.requests.length).toBe(8);
    expect(breaker.state).toBe('closed');

    const down = new OpenAI({
      apiKey: 'test',
      baseURL: 'http://embeddings.test/v1',
      maxRetries: 0,
      fetch: () => Promise.reject(new TypeError('fetch failed: connect ECONNREFUSED')),
    });
    const dead = new OpenAIEmbedder({ model: 'm', dimensions: 2, timeoutMs: 300 }, { client: down, guard: breaker });
    const errors: unknown[] = [];
    for (let i = 0; i < 4; i += 1) errors.push(await dead.embed([`q${i}`], 'query').catch((error: unknown) => error));
    // Failures fill the window of four the successes left, until its ratio opens it and calls are refused unsent.
    const types = errors.map((error) => (error as RaglineError).type);
    expect(types[0]).toBe(ErrorType.Unavailable);
    expect(types.at(-1)).toBe(ErrorType.CircuitOpen);
    expect(breaker.state).toBe('open');
    await expect(dead.embed(['q'], 'query')).rejects.toMatchObject({ type: ErrorType.CircuitOpen });
  });
});

describe('nameDocuments', () => {
  it('names a few documents of a large batch and counts the rest', () => {
    expect(nameDocuments(['a', 'b'])).toBe('a, b');
    expect(
      nameDocuments(
        Array.from({ length: 200 }, (_, i) => `d${i}`),
        3,
      ),
    ).toBe('d0, d1, d2 and 197 more');
  });
});
