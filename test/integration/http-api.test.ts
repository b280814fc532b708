import http from 'node:http';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApi } from '../../http/server.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { createApiToken, parseApiTokens } from '../../lib/api-tokens.js';
import { apiRequest, type ApiRequestOptions } from '../support/http.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';

interface ErrorReply {
  error: { type: string; message: string; requestId?: string };
}

describe('HTTP API', () => {
  let ragline: TestRagline;
  let client: RaglineClient;
  const apis: FastifyInstance[] = [];
  let base: string;
  const defaultToken = createApiToken('default');
  const acmeToken = createApiToken('acme');
  const acmeIngest = createApiToken('acme', { scopes: ['query', 'ingest'] });
  const acmeIngestOnly = createApiToken('acme', { scopes: ['ingest'] });
  const expiredToken = createApiToken('default', { expires: '2001-01-01', now: new Date('2000-06-01') });
  const tokens = parseApiTokens(
    [defaultToken.entry, acmeToken.entry, acmeIngest.entry, acmeIngestOnly.entry, expiredToken.entry].join(','),
  );

  const listen = async (api: FastifyInstance) => {
    apis.push(api);
    return api.listen({ port: 0, host: '127.0.0.1' });
  };

  beforeAll(async () => {
    ragline = await startRagline();
    await ragline.ingest([SAMPLE_CORPUS]);
    await ragline.ingest([path.join(SAMPLE_CORPUS, 'webhooks.md')], 'acme');
    client = new RaglineClient(ragline.env.client, ragline.taskQueue, { maxQueryChars: 4000 });
    base = await listen(await createHttpApi(client, { tokens, rateLimitPerMinute: 1000 }));
  });
  afterAll(async () => {
    for (const api of apis) await api.close();
    await ragline?.stop();
  });

  const call = (method: string, route: string, options: ApiRequestOptions & { at?: string } = {}) =>
    apiRequest(options.at ?? base, method, route, options);
  const asDefault = { token: defaultToken.token };
  const asAcme = { token: acmeToken.token };

  it('refuses a missing, unknown or expired token with 401, and serves health and OpenAPI without one', async () => {
    const body = { query: 'What are the API rate limits?' };
    const missing = await call('POST', '/v1/query', { body });
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as ErrorReply).error).toMatchObject({ type: 'Unauthorized', message: /missing/ });
    const bad = await call('POST', '/v1/query', { body, token: 'rgl_not-a-real-token' });
    expect(((await bad.json()) as ErrorReply).error).toMatchObject({ type: 'Unauthorized', message: 'invalid token' });
    const expired = await call('POST', '/v1/query', { body, token: expiredToken.token });
    expect(expired.status).toBe(401);
    expect(((await expired.json()) as ErrorReply).error.message).toBe('token expired');
    for (const route of ['/v1/queries/x', '/v1/documents/webhooks']) {
      expect((await call(route.includes('documents') ? 'DELETE' : 'GET', route)).status).toBe(401);
    }
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/openapi.json')).status).toBe(200);
  });

  it("answers in the token's tenant and refuses another tenant with 403", async () => {
    const own = await call('POST', '/v1/query', { ...asDefault, body: { query: 'What are the API rate limits?' } });
    expect(own.status).toBe(200);
    const result = (await own.json()) as { tenant: string; queryId: string; sources: Array<{ docId: string }> };
    expect(result.tenant).toBe('default');
    expect(result.sources.map((s) => s.docId)).toContain('api-rate-limits');

    // acme's corpus holds only the webhooks page, so its answer cannot cite the default tenant's documents.
    const acme = await call('POST', '/v1/query', { ...asAcme, body: { query: 'What are the API rate limits?' } });
    const acmeResult = (await acme.json()) as { tenant: string; sources: Array<{ docId: string }> };
    expect(acmeResult.tenant).toBe('acme');
    expect(acmeResult.sources.every((s) => s.docId === 'webhooks')).toBe(true);

    const other = await call('POST', '/v1/query', { ...asAcme, body: { query: 'anything', tenant: 'default' } });
    expect(other.status).toBe(403);
    expect(((await other.json()) as ErrorReply).error).toMatchObject({ type: 'Forbidden', message: /"default"/ });

    const description = await ragline.env.client.workflow.getHandle(result.queryId).describe();
    expect(await description.staticSummary()).toBe('What are the API rate limits?');
  });

  it('starts a query asynchronously and reports it only to its own tenant', async () => {
    const started = await call('POST', '/v1/query?async=true', {
      ...asDefault,
      body: { query: 'How do I rotate an API key?' },
    });
    expect(started.status).toBe(202);
    const { queryId } = (await started.json()) as { queryId: string };
    expect((await call('GET', `/v1/queries/${queryId}`, asAcme)).status).toBe(404);
    await ragline.env.client.workflow.getHandle(queryId).result();
    const state = await call('GET', `/v1/queries/${queryId}`, asDefault);
    expect(state.status).toBe(200);
    const body = (await state.json()) as { status: string; result: { queryId: string; answer: string } };
    expect(body.status).toBe('completed');
    expect(body.result.queryId).toBe(queryId);
    expect(body.result.answer.length).toBeGreaterThan(0);
    expect((await call('GET', '/v1/queries/query-default-nope', asDefault)).status).toBe(404);

    // Feedback is bound to the token's tenant too: another tenant's query is unknown, naming a tenant is refused.
    const rating = { queryId, score: 4 };
    expect((await call('POST', '/v1/feedback', { ...asAcme, body: rating })).status).toBe(404);
    expect((await call('POST', '/v1/feedback', { ...asAcme, body: { ...rating, tenant: 'default' } })).status).toBe(
      403,
    );
    const rated = await call('POST', '/v1/feedback', { ...asDefault, body: rating });
    expect(rated.status).toBe(201);
    expect(await rated.json()).toEqual({ queryId, tenant: 'default' });
  });

  it('refuses a route whose scope the token lacks with 403 naming the scope, changing nothing', async () => {
    const deleting = await call('DELETE', '/v1/documents/webhooks', asAcme);
    expect(deleting.status).toBe(403);
    expect(((await deleting.json()) as ErrorReply).error).toMatchObject({
      type: 'Forbidden',
      message: /lacks the ingest scope .*--scope ingest/,
    });
    const asking = await call('POST', '/v1/query', {
      token: acmeIngestOnly.token,
      body: { query: 'How do I set up webhooks?' },
    });
    expect(asking.status).toBe(403);
    expect(((await asking.json()) as ErrorReply).error.message).toMatch(/lacks the query scope/);
    const feedback = await call('POST', '/v1/feedback', {
      token: acmeIngestOnly.token,
      body: { queryId: 'q', score: 5 },
    });
    expect(feedback.status).toBe(403);
    // The document is still there for acme's query token.
    const still = (await (
      await call('POST', '/v1/query', {
        ...asAcme,
        body: { query: 'How do I set up webhooks?', options: { bypassCache: true } },
      })
    ).json()) as { sources: Array<{ docId: string }> };
    expect(still.sources.map((s) => s.docId)).toContain('webhooks');
  });

  it("deletes only in the token's tenant", async () => {
    const asAcme = { token: acmeIngest.token };
    const refused = await call('DELETE', '/v1/documents/api-keys?tenant=default', asAcme);
    expect(refused.status).toBe(403);
    const elsewhere = await call('DELETE', '/v1/documents/api-keys', asAcme);
    expect(await elsewhere.json()).toMatchObject({ deleted: [], missing: ['api-keys'] });
    const still = (await (
      await call('POST', '/v1/query', {
        ...asDefault,
        body: { query: 'How do I create an API key?', options: { bypassCache: true } },
      })
    ).json()) as { sources: Array<{ docId: string }> };
    expect(still.sources.map((s) => s.docId)).toContain('api-keys');

    const own = await call('DELETE', '/v1/documents/webhooks', asAcme);
    expect(await own.json()).toMatchObject({ deleted: ['webhooks'], missing: [] });
    const defaultStill = (await (
      await call('POST', '/v1/query', {
        ...asDefault,
        body: { query: 'How do I set up webhooks?', options: { bypassCache: true } },
      })
    ).json()) as { sources: Array<{ docId: string }> };
    expect(defaultStill.sources.map((s) => s.docId)).toContain('webhooks');
  });

  it('rejects bad requests with a 4xx naming the problem', async () => {
    const cases: Array<[Response, number, RegExp]> = [
      [await call('POST', '/v1/query', { ...asDefault, body: { query: 'x'.repeat(4001) } }), 400, /maximum is 4000/],
      [await call('POST', '/v1/query', { ...asDefault, body: { question: 'wrong field' } }), 400, /question|query/],
      [await call('POST', '/v1/query', { ...asDefault, body: { query: 'q', extra: 1 } }), 400, /extra/],
      [await call('POST', '/v1/query', { ...asDefault, body: { query: 'q', options: { topK: 99 } } }), 400, /topK/],
      [await call('POST', '/v1/query', { ...asDefault, body: { query: 'hi\u0000there' } }), 400, /control characters/],
      [await call('POST', '/v1/query', { ...asDefault, raw: '{"query":', type: 'application/json' }), 400, /JSON/i],
      [await call('POST', '/v1/query', { ...asDefault, raw: 'query=x', type: 'text/plain' }), 415, /content-type/i],
      [
        await call('POST', '/v1/query', { ...asDefault, body: { query: 'q', userId: 'u'.repeat(100_000) } }),
        413,
        /too large/i,
      ],
      [await call('POST', '/v1/ingest', { ...asDefault, body: { paths: ['/etc'] } }), 404, /not found/i],
    ];
    for (const [response, status, message] of cases) {
      expect(response.status).toBe(status);
      const body = (await response.json()) as ErrorReply;
      expect(body.error.message).toMatch(message);
    }
  });

  it('limits each token separately, answering 429 with Retry-After', async () => {
    const limited = await listen(await createHttpApi(client, { tokens, rateLimitPerMinute: 2 }));
    const body = { query: 'q', extra: true };
    for (let i = 0; i < 2; i += 1)
      expect((await call('POST', '/v1/query', { ...asDefault, body, at: limited })).status).toBe(400);
    const over = await call('POST', '/v1/query', { ...asDefault, body, at: limited });
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await over.json()) as ErrorReply).error.type).toBe('RateLimited');
    // Another token has its own budget.
    expect((await call('POST', '/v1/query', { ...asAcme, body, at: limited })).status).toBe(400);
  });

  it('without tokens, refuses what a web page could send: another Host, another Origin, a cross-site fetch, a non-JSON body', async () => {
    const open = await listen(await createHttpApi(client, { rateLimitPerMinute: 1000 }));
    const port = Number(new URL(open).port);
    const send = (headers: Record<string, string>, body?: string) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const request = http.request(
          { host: '127.0.0.1', port, method: 'POST', path: '/v1/query', headers },
          (response) => {
            let text = '';
            response.setEncoding('utf8');
            response.on('data', (chunk: string) => (text += chunk));
            response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
          },
        );
        request.on('error', reject);
        request.end(body);
      });
    const json = { 'content-type': 'application/json' };
    const question = JSON.stringify({ query: 'What are the API rate limits?' });
    // DNS rebinding: the attacker's name resolves to 127.0.0.1, and the browser sends that name as the Host.
    const rebound = await send({ ...json, host: `rebind.attacker.example:${port}` }, question);
    expect(rebound.status).toBe(403);
    expect(rebound.text).toMatch(/addressed to this machine/);
    const crossOrigin = await send(
      { ...json, host: `127.0.0.1:${port}`, origin: 'https://attacker.example' },
      question,
    );
    expect(crossOrigin.status).toBe(403);
    expect(crossOrigin.text).toMatch(/cross-site request refused/);
    const nullOrigin = await send({ ...json, host: `localhost:${port}`, origin: 'null' }, question);
    expect(nullOrigin.status).toBe(403);
    const crossSite = await send({ ...json, host: `localhost:${port}`, 'sec-fetch-site': 'cross-site' }, question);
    expect(crossSite.status).toBe(403);
    // A form or a no-CORS fetch can send only simple content types; none is accepted.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      expect((await send({ host: `127.0.0.1:${port}`, 'content-type': type }, question)).status).toBe(415);
    }
    // A page served from this machine, and a tool that sends no Origin, are served.
    const local = await send({ ...json, host: `localhost:${port}`, origin: 'http://localhost:5173' }, question);
    expect(local.status).toBe(200);
    expect(JSON.parse(local.text)).toMatchObject({ tenant: 'default' });
    expect((await send({ ...json, host: `127.0.0.1:${port}` }, question)).status).toBe(200);
  });

  it('serves an OpenAPI 3.1 document that a validator accepts and that lists every route', async () => {
    const document = (await (await call('GET', '/openapi.json')).json()) as {
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    };
    expect(document.openapi).toBe('3.1.0');
    const validation = await new Validator().validate(document);
    expect(validation.errors).toBeUndefined();
    expect(validation.valid).toBe(true);
    const listed = Object.entries(document.paths).flatMap(([route, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`),
    );
    expect(listed.sort()).toEqual([
      'DELETE /v1/documents/{id}',
      'GET /v1/models',
      'GET /v1/queries/{id}',
      'POST /v1/chat/completions',
      'POST /v1/feedback',
      'POST /v1/query',
    ]);
    const chat = document.paths['/v1/chat/completions']?.post as {
      requestBody: { content: Record<string, { schema: unknown }> };
      responses: Record<string, { content: Record<string, { schema: unknown }> }>;
    };
    expect(JSON.stringify(chat.requestBody.content['application/json']?.schema)).toContain('ChatCompletionRequest');
    expect(Object.keys(chat.responses['200']?.content ?? {}).sort()).toEqual(['application/json', 'text/event-stream']);
    expect(JSON.stringify(chat.responses['200']?.content['application/json']?.schema)).toContain('ChatCompletion');
    const query = document.paths['/v1/query']?.post as {
      requestBody: { content: Record<string, { schema: unknown }> };
    };
    expect(JSON.stringify(query.requestBody.content['application/json']?.schema)).toContain('QueryRequest');
  });

  it('says no worker is polling when nobody serves the task queue, and leaks nothing on an internal error', async () => {
    const idle = new RaglineClient(ragline.env.client, `nobody-${randomUUID()}`, { maxQueryChars: 4000 });
    const idleApi = await listen(await createHttpApi(idle, { tokens }));
    const response = await call('POST', '/v1/query', {
      ...asDefault,
      at: idleApi,
      body: { query: 'Is anyone there?', options: { deadlineMs: 1000 } },
    });
    expect(response.status).toBe(503);
    const body = (await response.json()) as ErrorReply;
    expect(body.error.type).toBe('NoWorker');
    expect(body.error.message).toMatch(/no worker is polling task queue "nobody-/);

    const connection = await Connection.connect({ address: ragline.env.connection.options.address });
    const broken = new RaglineClient(new Client({ connection }), ragline.taskQueue, { maxQueryChars: 4000 });
    await connection.close();
    const brokenApi = await listen(await createHttpApi(broken, { tokens }));
    const failed = await call('POST', '/v1/query', { ...asDefault, at: brokenApi, body: { query: 'hello?' } });
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const failure = (await failed.json()) as ErrorReply;
    expect(Object.keys(failure.error).sort()).toEqual(['message', 'requestId', 'type']);
    expect(['internal error', 'a dependency is unavailable; try again shortly']).toContain(failure.error.message);
  });
});
