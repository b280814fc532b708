import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerGenerator, ChunkStore } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { FALLBACK_MESSAGES } from '../../contracts/query.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import type { RuntimeOverrides } from '../../workers/runtime.js';
import { startTestTemporal } from '../support/temporal.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';

/** A store whose search fails the way a vector store that is down does; everything else works. */
function failingSearch(store: ChunkStore, calls: { search: number }): ChunkStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property === 'search') {
        return async () => {
          calls.search += 1;
          throw new Error('connect ECONNREFUSED 127.0.0.1:6333');
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const failingGenerator = (calls: { generate: number }): AnswerGenerator => ({
  model: 'broken-llm',
  async generate() {
    calls.generate += 1;
    throw new Error('upstream returned 503');
  },
  async health() {
    return { ok: false, latencyMs: 0, error: 'down' };
  },
});

describe('fallback branches', () => {
  let env: TestWorkflowEnvironment;
  const running: TestRagline[] = [];

  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    for (const r of running) await r.stop();
    await env?.teardown();
  });

  async function raglineWith(overrides: RuntimeOverrides) {
    const ragline = await startRagline({ env, overrides });
    running.push(ragline);
    await ragline.ingest([SAMPLE_CORPUS]);
    return ragline;
  }

  const ask = (ragline: TestRagline, query: string) =>
    env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${randomUUID()}`,
      args: [{ query }],
    });

  it('answers with a clear fallback, flagged degraded, when retrieval keeps failing', async () => {
    const calls = { search: 0 };
    const store = failingSearch(await EmbeddedStore.open(await tempDir()), calls);
    const ragline = await raglineWith({ store });
    const result = await ask(ragline, 'How do I reset my password?');
    expect(result.degraded).toBe(true);
    expect(result.fallbackReason).toBe('retrieval-unavailable');
    // Callers get the stable reason and a short message; the upstream error and address stay in logs and traces.
    expect(result.fallbackDetail).toBe(FALLBACK_MESSAGES['retrieval-unavailable']);
    expect(result.fallbackDetail).not.toContain('ECONNREFUSED');
    expect(result.rung).toBe('message');
    expect(result.degradedReasons).toEqual(['retrieval-unavailable']);
    expect(result.answer).toMatch(/unavailable/i);
    expect(result.sources).toEqual([]);
    expect(result.qualityTier).toBe('poor');
    expect(calls.search).toBe(3);
  });

  it('answers extractively from the retrieved chunks, flagged degraded, when generation keeps failing', async () => {
    const calls = { generate: 0 };
    const ragline = await raglineWith({ generator: failingGenerator(calls) });
    const result = await ask(ragline, 'How do I reset my password?');
    expect(result.degraded).toBe(true);
    expect(result.fallbackReason).toBe('generation-failed');
    expect(result.rung).toBe('extractive');
    expect(result.fallbackDetail).not.toContain('503');
    expect(result.model).toBe('extractive');
    expect(result.sources.map((s) => s.docId)).toContain('password-reset');
    expect(result.answer).toMatch(/\[\d\]/);
    expect(calls.generate).toBe(3);

    // A degraded answer is not cached: the next asker gets a fresh attempt.
    const again = await ask(ragline, 'How do I reset my password?');
    expect(again.cache.result).toBe('miss');
  });

  it('answers from the retrieved snippets when not even the chunk texts can be read', async () => {
    const base = await EmbeddedStore.open(await tempDir());
    const store = new Proxy(base, {
      get(target, property, receiver) {
        if (property === 'getChunks') return async () => Promise.reject(new Error('chunk read timed out'));
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const ragline = await raglineWith({ store });
    const result = await ask(ragline, 'What are the API rate limits?');
    expect(result.degraded).toBe(true);
    expect(result.fallbackReason).toBe('generation-failed');
    expect(result.model).toBe('snippets');
    expect(result.sources.map((s) => s.docId)).toContain('api-rate-limits');
    expect(result.answer).toContain(`${result.sources[0]?.snippet} [1]`);
    expect(result.citations).toEqual([1, 2]);
  });
});
