import { Client } from '@temporalio/client';
import { NativeConnection, type CustomSlotSupplier, type SlotPermit, type WorkflowSlotInfo } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RaglineClient } from '../../client/ragline-client.js';
import { createWorker } from '../../workers/runtime.js';
import { SAMPLE_CORPUS, startRagline, workflowBundle, type TestRagline } from '../support/ragline.js';

/**
 * Workflow task slots that the test can declare all taken, as a busy API process's worker has them: then eager
 * reservations are refused and polling waits. It counts every eager reservation asked for and granted.
 */
class FillableSlots implements CustomSlotSupplier<WorkflowSlotInfo> {
  readonly type = 'custom' as const;
  full = false;
  eagerAsked = 0;
  eagerGranted = 0;
  private waiting: Array<() => void> = [];

  async reserveSlot(_ctx: unknown, abortSignal: AbortSignal): Promise<SlotPermit> {
    while (this.full) {
      abortSignal.throwIfAborted();
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        abortSignal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
    abortSignal.throwIfAborted();
    return {};
  }

  tryReserveSlot(): SlotPermit | null {
    this.eagerAsked += 1;
    if (this.full) return null;
    this.eagerGranted += 1;
    return {};
  }

  markSlotUsed(): void {}
  releaseSlot(): void {}

  free(): void {
    this.full = false;
    for (const wake of this.waiting.splice(0)) wake();
  }
}

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

  it('starts normally when the local worker has no free slot, and another worker answers; the path is counted', async () => {
    // The API process: its own connection, a worker on it whose slots the test fills, and a client sharing it.
    const connection = await NativeConnection.connect({ address: ragline.env.address });
    const slots = new FillableSlots();
    const local = await createWorker({
      connection,
      namespace: ragline.env.namespace ?? 'default',
      taskQueue: ragline.taskQueue,
      runtime: ragline.runtime,
      workflowBundle: await workflowBundle(),
      extra: {
        tuner: {
          workflowTaskSlotSupplier: slots,
          activityTaskSlotSupplier: { type: 'fixed-size', numSlots: 10 },
          localActivityTaskSlotSupplier: { type: 'fixed-size', numSlots: 10 },
          nexusTaskSlotSupplier: { type: 'fixed-size', numSlots: 1 },
        },
      },
    });
    const running = local.run();
    const starts = { eager: 0, normal: 0 };
    const client = new RaglineClient(new Client({ connection }), ragline.taskQueue, {
      maxQueryChars: 4000,
      eagerStart: true,
      onStarted: ({ eager }) => (starts[eager ? 'eager' : 'normal'] += 1),
    });
    const questions = ['How do I reset my password?', 'What are the API rate limits?', 'How do I set up webhooks?'];
    try {
      const eager = [];
      for (const query of questions) eager.push(await client.startAsk({ query, options: { bypassCache: true } }));
      expect(eager.map((s) => s.eagerlyStarted)).toEqual([true, true, true]);
      expect(slots.eagerGranted).toBe(3);

      slots.full = true;
      const queued = [];
      for (const query of questions) queued.push(await client.startAsk({ query, options: { bypassCache: true } }));
      expect(queued.map((s) => s.eagerlyStarted)).toEqual([false, false, false]);
      expect(slots.eagerAsked).toBe(6);
      expect(slots.eagerGranted).toBe(3);
      expect(starts).toEqual({ eager: 3, normal: 3 });
      // The local worker cannot take them (its slots stay full): the test's other worker answers each one.
      for (const { queryId } of [...eager, ...queued]) {
        const result = (await ragline.env.client.workflow.getHandle(queryId).result()) as { answer: string };
        expect(result.answer.length).toBeGreaterThan(0);
      }
    } finally {
      slots.free();
      local.shutdown();
      await running;
      await connection.close();
    }
  });
});
