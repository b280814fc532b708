import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { embedThroughCache, type EmbeddingCache, type EmbeddingCacheKey } from '../../lib/retrieval/embedder.js';
import { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';

/** An OpenAI client whose HTTP layer is a function, so the SDK's own parsing and error classes are exercised. */
function clientAnswering(respond: (body: { input: string[] }) => Response) {
  const requests: string[][] = [];
  const client = new OpenAI({
    apiKey: 'test',
    baseURL: 'http://embeddings.test/v1',
    maxRetries: 0,
    fetch: async (_url, init) => {
      const body = JSON.parse(String(init?.body)) as { input: string[] };
      requests.push(body.input);
      return respond(body);
    },
  });
  return { client, requests };
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
    const vectors = await embedThroughCache(['x'], { model: 'm', dimensions: 1 }, broken, async (texts) =>
      texts.map(() => [7]),
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
