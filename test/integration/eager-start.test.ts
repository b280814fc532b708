import { Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaglineClient } from '../../client/ragline-client.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';

describe('eager start', () => {
  let ragline: TestRagline;

  beforeAll(async () => {
    ragline = await startRagline();
    await ragline.ingest([SAMPLE_CORPUS]);
  });
  afterAll(async () => {
    await ragline?.stop();
  });

  it("hands the first task to the worker sharing the client's connection", async () => {
    // The test worker runs on env.nativeConnection, so a client over it is co-located with the worker.
    const client = new RaglineClient(new Client({ connection: ragline.env.nativeConnection }), ragline.taskQueue, {
      maxQueryChars: 4000,
      eagerStart: true,
    });
    const started = await client.startAsk({ query: 'What are the API rate limits?' });
    expect(started.eagerlyStarted).toBe(true);
    const state = await client.queryState(started.queryId, 'default');
    const result = await ragline.env.client.workflow.getHandle(started.queryId).result();
    expect(state?.queryId).toBe(started.queryId);
    expect((result as { sources: Array<{ docId: string }> }).sources.map((s) => s.docId)).toContain('api-rate-limits');
  });

  it('falls back to a normal start when no worker slot is reachable from the client', async () => {
    // A client on a connection no worker shares has no local slot to offer, so the server queues the task as usual.
    const connection = await NativeConnection.connect({ address: ragline.env.address });
    const client = new RaglineClient(new Client({ connection }), ragline.taskQueue, {
      maxQueryChars: 4000,
      eagerStart: true,
    });
    const started = await client.startAsk({ query: 'How do I rotate an API key?' });
    await connection.close();
    expect(started.eagerlyStarted).toBe(false);
    const result = await ragline.env.client.workflow.getHandle(started.queryId).result();
    expect((result as { answer: string }).answer.length).toBeGreaterThan(0);
  });
});
