import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnswerGenerator, ChunkStore } from '../../lib/domain.js';
import { ExtractiveGenerator } from '../../lib/generation/extractive.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { TestRedis } from '../support/redis.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';

/**
 * Counts calls to the store's search and the generator, the two expensive steps of a miss, and to the store's full
 * stats, which no query should need.
 */
function counted(store: ChunkStore, generator: AnswerGenerator) {
  const calls = { search: 0, generate: 0, stats: 0 };
  const countingStore = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if ((property === 'search' || property === 'stats') && typeof value === 'function') {
        return (...args: unknown[]) => {
          calls[property] += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const countingGenerator: AnswerGenerator = {
    model: generator.model,
    async generate(request) {
      calls.generate += 1;
      // Slow enough that the burst's other queries arrive while this one is still computing.
      await new Promise((resolve) => setTimeout(resolve, 300));
      return generator.generate(request);
    },
    health: () => generator.health(),
  };
  return { calls, store: countingStore, generator: countingGenerator };
}

describe.each(['memory', 'redis'] as const)('query workflow with the %s cache', (backend) => {
  let env: TestWorkflowEnvironment;
  let redis: TestRedis | undefined;
  let ragline: TestRagline;
  let calls: { search: number; generate: number; stats: number };

  beforeAll(async () => {
    env = await startTestTemporal();
    redis = backend === 'redis' ? await TestRedis.start() : undefined;
    const parts = counted(await EmbeddedStore.open(await tempDir()), new ExtractiveGenerator());
    calls = parts.calls;
    ragline = await startRagline({
      env,
      config: redis ? { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `t${randomUUID().slice(0, 8)}:` } : {},
      overrides: { store: parts.store, generator: parts.generator },
    });
    await ragline.ingest([SAMPLE_CORPUS]);
  });
  afterAll(async () => {
    await ragline?.stop();
    await redis?.stop();
    await env?.teardown();
  });

  const ask = (query: string, tenant?: string) =>
    env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${randomUUID()}`,
      args: [{ query, tenant }],
    });

  it('computes a burst of identical misses once: 1 retrieval and 1 generation for 12 queries', async () => {
    const before = { ...calls };
    const results = await Promise.all(Array.from({ length: 12 }, () => ask('What does the enterprise plan include?')));
    expect(calls.search - before.search).toBe(1);
    expect(calls.generate - before.generate).toBe(1);
    expect(new Set(results.map((r) => r.answer)).size).toBe(1);
    expect(results.every((r) => r.sources.some((s) => s.docId === 'enterprise-plan'))).toBe(true);
  });

  it("reads only the corpus version on a miss and on a hit, never the store's full stats", async () => {
    // On Qdrant, stats are exact counts over the tenant's whole corpus: a cost no query should pay.
    const before = { ...calls };
    const miss = await ask('How long are audit logs kept?');
    const hit = await ask('How long are audit logs kept?');
    expect([miss.cache.result, hit.cache.result]).toEqual(['miss', 'hit']);
    expect(calls.search - before.search).toBe(1);
    expect(calls.stats - before.stats).toBe(0);
  });

  it('serves a near-duplicate question from the semantic cache, and refuses an opposite one', async () => {
    const first = await ask('How do I enable two-factor authentication?');
    expect(first.cache.result).toBe('miss');
    const paraphrase = await ask('how can I enable two factor authentication');
    expect(paraphrase.cache).toMatchObject({ semantic: 'hit' });
    expect(paraphrase.answer).toBe(first.answer);
    const opposite = await ask('How do I disable two-factor authentication?');
    expect(opposite.cache.semantic).toBeUndefined();
    expect(opposite.cache.result).toBe('miss');
  });

  it('never serves one tenant the answer cached for another', async () => {
    const question = 'How do I set up webhooks?';
    const owner = await ask(question);
    expect(owner.sources.length).toBeGreaterThan(0);
    expect((await ask(question)).cache.result).toBe('hit');
    const stranger = await ask(question, 'other-tenant');
    expect(stranger.cache.result).toBe('miss');
    expect(stranger.sources).toEqual([]);
  });

  // Declared for the Redis backend only (the in-process cache has no outage), so no run reports it skipped.
  if (backend !== 'redis') return;

  it('keeps answering while Redis is down, and hits again once it is back', async () => {
    const question = 'How can I export my data?';
    await ask(question);
    expect((await ask(question)).cache.result).toBe('hit');

    await redis!.stop();
    const during = await ask(question);
    expect(during.degradedReasons ?? []).toEqual([]);
    expect(during.sources.map((s) => s.docId)).toContain('data-export');
    expect(during.cache.result).toBe('error');

    await redis!.restart();
    // The server restarted empty (no persistence): the next query misses and refills, the one after hits.
    await vi.waitFor(async () => expect((await ask(question)).cache.result).not.toBe('error'), {
      timeout: 15_000,
      interval: 250,
    });
    expect((await ask(question)).cache.result).toBe('hit');
  });
});
