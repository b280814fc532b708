import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApi } from '../../client/http-api.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';

describe('HTTP API', () => {
  let ragline: TestRagline;
  let api: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    ragline = await startRagline();
    await ragline.ingest([SAMPLE_CORPUS]);
    api = createHttpApi(new RaglineClient(ragline.env.client, ragline.taskQueue, { maxQueryChars: 4000 }));
    base = await api.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await api?.close();
    await ragline?.stop();
  });

  const post = (path: string, body: unknown) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('answers a question through the query workflow', async () => {
    const response = await post('/v1/query', { query: 'What are the API rate limits?' });
    expect(response.status).toBe(200);
    const result = (await response.json()) as { sources: Array<{ docId: string }>; queryId: string };
    expect(result.sources.map((s) => s.docId)).toContain('api-rate-limits');
    expect(result.queryId).toMatch(/^query-default-[0-9a-f]{8}-/);
  });

  it('rejects bad input with 400 and a typed error, starting no workflow', async () => {
    const tooLong = await post('/v1/query', { query: 'x'.repeat(4001) });
    expect(tooLong.status).toBe(400);
    expect(await tooLong.json()).toEqual({
      error: { type: 'InvalidInput', message: expect.stringMatching(/maximum is 4000/) },
    });
    const missing = await post('/v1/query', { question: 'wrong field' });
    expect(missing.status).toBe(400);
    const ingest = await post('/v1/ingest', { paths: ['/etc'] });
    expect(ingest.status).toBe(404);
    const control = await post('/v1/query', { query: 'hi\u0000there' });
    expect(control.status).toBe(400);
    expect(((await control.json()) as { error: { message: string } }).error.message).toMatch(/control characters/);
  });

  it('deletes a document of a tenant', async () => {
    const response = await fetch(`${base}/v1/documents/webhooks?tenant=default`, { method: 'DELETE' });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ deleted: ['webhooks'], missing: [] });
    const after = (await (await post('/v1/query', { query: 'How do I set up webhooks?' })).json()) as {
      sources: Array<{ docId: string }>;
    };
    expect(after.sources.map((s) => s.docId)).not.toContain('webhooks');
  });
});
