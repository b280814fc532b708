import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';

describe('query workflow on a real Temporal dev server', () => {
  let ragline: TestRagline;

  beforeAll(async () => {
    ragline = await startRagline();
    await ragline.ingest([SAMPLE_CORPUS]);
  });
  afterAll(async () => ragline?.stop());

  const ask = (query: string, extra: Record<string, unknown> = {}) =>
    ragline.env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-test-${randomUUID()}`,
      args: [{ query, ...extra }],
    });

  it('answers a sample question with its document among the sources, then serves it from the result cache', async () => {
    const first = await ask('How do I reset my password?');
    expect(first.sources.map((s) => s.docId)).toContain('password-reset');
    expect(first.cache.result).toBe('miss');
    expect(first.degraded).toBe(false);
    expect(first.answer).toMatch(/\[\d+\]/);
    // Every [n] in the answer is listed in citations, and every citation names a source.
    const markers = [...first.answer.matchAll(/\[(\d+)\]/g)].map((m) => Number(m[1]));
    expect(first.citations).toEqual([...new Set(markers)].sort((a, b) => a - b));
    for (const n of first.citations ?? []) expect(first.sources.some((s) => s.n === n)).toBe(true);

    const second = await ask('how do I reset my password');
    expect(second.cache.result).toBe('hit');
    expect(second.answer).toBe(first.answer);
    expect(second.sources).toEqual(first.sources);
    expect(second.citations).toEqual(first.citations);
  });

  it('rejects an empty question with a typed, non-retryable failure', async () => {
    const error = await ask('   ').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    expect((cause as ApplicationFailure).type).toBe('InvalidInput');
    expect((cause as ApplicationFailure).nonRetryable).toBe(true);
  });
});
