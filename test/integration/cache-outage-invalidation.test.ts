import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { startRagline, tempDir, type TestRagline } from '../support/ragline.js';
import { TestRedis } from '../support/redis.js';

/**
 * A document re-ingested while Redis is unreachable: the invalidation of the answers citing it cannot reach Redis
 * then (the cache breaker is open, or the call fails), and the answers are still there when Redis comes back. The
 * next asker must get the new text, not the answer cached before the change.
 */
describe('cache invalidation across a Redis outage', () => {
  let redis: TestRedis;
  let ragline: TestRagline;
  let docs: string;

  beforeAll(async () => {
    redis = await TestRedis.start();
    ragline = await startRagline({
      config: { REDIS_URL: redis.url, RAGLINE_BREAKER_CACHE: 'minCalls=2,window=2,openMs=600000' },
    });
    docs = await tempDir();
  });
  afterAll(async () => {
    redis?.resume();
    await ragline?.stop();
    await redis?.stop();
  });

  const writeDoc = (limit: number) =>
    fs.writeFile(
      path.join(docs, 'quokka-policy.md'),
      `# Quokka feeding policy\n\nThe zanzibar quokka feeding limit is ${limit} pellets per keeper per day.\n`,
    );
  const ask = (query: string) =>
    ragline.env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${randomUUID()}`,
      args: [{ query }],
    });
  const QUESTION = 'What is the zanzibar quokka feeding limit?';

  it('serves the re-ingested text after Redis comes back, not the answer cached before the change', async () => {
    await writeDoc(5);
    await ragline.ingest([docs]);
    const before = await ask(QUESTION);
    expect(before.answer).toContain('5 pellets');
    expect((await ask(QUESTION)).cache.result).toBe('hit');

    redis.pause();
    // Lookups fail until the cache breaker opens; answers still come, uncached.
    for (let i = 0; ragline.runtime.breakers?.cache.state !== 'open' && i < 20; i += 1) await ask(`${QUESTION} (${i})`);
    expect(ragline.runtime.breakers?.cache.state).toBe('open');
    await writeDoc(9);
    const reingested = await ragline.ingest([docs]);
    expect(reingested.updated).toBe(1);
    redis.resume();
    ragline.runtime.breakers?.cache.isolate().dispose();

    const after = await ask(QUESTION);
    expect(after.answer).toContain('9 pellets');
    expect(after.answer).not.toContain('5 pellets');
  });

  it('does not report a deletion done while the stale answers citing the document could not be dropped', async () => {
    const keys = new Redis(redis.url);
    try {
      await writeDoc(7);
      await ragline.ingest([docs]);
      expect((await ask(QUESTION)).answer).toContain('7 pellets');
      const staleAnswers = async () => (await keys.keys('*stale:*')).length;
      expect(await staleAnswers()).toBeGreaterThan(0);

      redis.pause();
      for (let i = 0; ragline.runtime.breakers?.cache.state !== 'open' && i < 20; i += 1)
        await ask(`${QUESTION} [${i}]`);
      expect(ragline.runtime.breakers?.cache.state).toBe('open');
      const failed = await ragline.client.deleteDocuments(['quokka-policy']).then(
        () => undefined,
        (error: unknown) => error,
      );
      const messages: string[] = [];
      for (let e = failed as { message?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e)
        messages.push(String(e.message));
      expect(messages.join(' <- ')).toMatch(/cached answers that cited them could not be dropped/);
      redis.resume();
      ragline.runtime.breakers?.cache.isolate().dispose();
      // Deleted from the index already; the stale answer that cited it is still in Redis.
      expect(await staleAnswers()).toBeGreaterThan(0);

      // Run again, as the error says: the index finds nothing left to delete, and the answers are dropped anyway.
      expect(await ragline.client.deleteDocuments(['quokka-policy'])).toMatchObject({
        deleted: [],
        missing: ['quokka-policy'],
      });
      expect(await staleAnswers()).toBe(0);
    } finally {
      keys.disconnect();
    }
  });
});
