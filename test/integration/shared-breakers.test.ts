import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { breakersHealth, CircuitOpenError, createBreakers, type Breakers } from '../../lib/resilience/breakers.js';
import { BreakerSharing } from '../../lib/resilience/shared-breakers.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { createRuntime } from '../../workers/runtime.js';
import { freePort, TestRedis } from '../support/redis.js';

const settings = { failureRatio: 0.5, window: 4, minCalls: 4, openMs: 60_000, halfOpenProbes: 1 };
const fail = () => Promise.reject(new RaglineError(ErrorType.Unavailable, 'llm down'));

describe('breakers shared between workers through Redis', () => {
  let redis: TestRedis;
  let raw: Redis;
  const sharings: BreakerSharing[] = [];
  let prefix = 0;

  /** A worker's breakers and their sharing, as `createRuntime` builds them with RAGLINE_BREAKER_SHARED=true. */
  const worker = (workerId: string, keyPrefix: string, openMs = settings.openMs): Breakers => {
    const breakers = createBreakers({
      store: settings,
      llm: { ...settings, openMs },
      embedder: settings,
      cache: settings,
    });
    sharings.push(BreakerSharing.start(breakers, { url: redis.url, keyPrefix, workerId }));
    return breakers;
  };
  const freshPrefix = () => `test${(prefix += 1)}:`;
  const subscribed = async (keyPrefix: string, workers: number) =>
    vi.waitFor(
      async () => {
        const [, count] = (await raw.pubsub('NUMSUB', `${keyPrefix}breakers`)) as [string, number];
        expect(count).toBe(workers);
      },
      { timeout: 5000 },
    );

  beforeAll(async () => {
    redis = await TestRedis.start();
    raw = new Redis(redis.url);
  });
  afterAll(async () => {
    for (const sharing of sharings) await sharing.close();
    raw?.disconnect();
    await redis?.stop();
  });

  it("holds every worker's breaker open when one worker's opens, without calling the dependency", async () => {
    const keyPrefix = freshPrefix();
    const a = worker('worker-a', keyPrefix);
    const b = worker('worker-b', keyPrefix);
    await subscribed(keyPrefix, 2);

    for (let i = 0; i < settings.minCalls; i += 1) await expect(a.llm.run(fail)).rejects.toThrow('llm down');
    expect(a.llm.state).toBe('open');
    await vi.waitFor(() => expect(b.llm.state).toBe('open'), { timeout: 5000 });

    let called = 0;
    const call = () => {
      called += 1;
      return Promise.resolve('answer');
    };
    const refused = await b.llm.run(call).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect((refused as CircuitOpenError).retryAfterMs).toBeGreaterThan(50_000);
    expect(called).toBe(0);
    expect(b.llm.snapshot()).toMatchObject({ state: 'open', heldOpenBy: 'worker-a' });
    expect((await breakersHealth(b)()).detail).toContain('llm=open (held by worker-a)');
    // Only the dependency that failed, and the news names it in Redis for workers started later.
    expect(b.store.state).toBe('closed');
    expect(JSON.parse((await raw.get(`${keyPrefix}breaker:llm`)) ?? '{}')).toMatchObject({
      dependency: 'llm',
      state: 'open',
      by: 'worker-a',
    });
    expect(await raw.pttl(`${keyPrefix}breaker:llm`)).toBeGreaterThan(0);

    // A worker started during the outage starts held open, from the key.
    const c = worker('worker-c', keyPrefix);
    await vi.waitFor(() => expect(c.llm.state).toBe('open'), { timeout: 5000 });
  });

  it("releases the others when the first worker's half-open probe succeeds", async () => {
    const keyPrefix = freshPrefix();
    // worker-a half-opens after 300 ms; the others hold for as long, then a recovery message releases them early
    // enough to be seen: worker-b's hold is extended by hand to a minute so only the message can end it.
    const a = worker('worker-a', keyPrefix, 300);
    const b = worker('worker-b', keyPrefix);
    await subscribed(keyPrefix, 2);
    for (let i = 0; i < settings.minCalls; i += 1) await expect(a.llm.run(fail)).rejects.toThrow('llm down');
    await vi.waitFor(() => expect(b.llm.state).toBe('open'), { timeout: 5000 });
    b.llm.holdOpen(Date.now() + 60_000, 'worker-a');

    // cockatiel half-opens on the first call after its open period: that call is the probe.
    await vi.waitFor(() => expect(a.llm.retryAfterMs).toBe(0), { timeout: 5000, interval: 50 });
    await expect(a.llm.run(() => Promise.resolve('ok'))).resolves.toBe('ok');
    expect(a.llm.state).toBe('closed');
    await vi.waitFor(() => expect(b.llm.state).toBe('closed'), { timeout: 5000 });
    await expect(b.llm.run(() => Promise.resolve('answer'))).resolves.toBe('answer');
    expect(await raw.exists(`${keyPrefix}breaker:llm`)).toBe(0);
    expect(b.llm.snapshot().transitions.slice(-2)).toMatchObject([
      { to: 'open', by: 'worker-a' },
      { to: 'closed', by: 'worker-a' },
    ]);
  });

  it('ignores malformed news and news about the cache, and a worker ignores its own', async () => {
    const keyPrefix = freshPrefix();
    const a = worker('worker-a', keyPrefix);
    await subscribed(keyPrefix, 1);
    const until = Date.now() + 60_000;
    for (const payload of [
      'not json',
      JSON.stringify({ dependency: 'cache', state: 'open', until, by: 'worker-x' }),
      JSON.stringify({ dependency: 'llm', state: 'open', until: 'soon', by: 'worker-x' }),
      JSON.stringify({ dependency: 'llm', state: 'open', until, by: 'worker-a' }),
    ])
      await raw.publish(`${keyPrefix}breakers`, payload);
    // A well-formed message sent last: once it is heard, the ones before it were heard (and ignored) too.
    await raw.publish(`${keyPrefix}breakers`, JSON.stringify({ dependency: 'store', state: 'open', until, by: 'x' }));
    await vi.waitFor(() => expect(a.store.state).toBe('open'), { timeout: 5000 });
    expect(a.llm.state).toBe('closed');
    expect(a.cache.state).toBe('closed');
  });

  it('keeps each worker breaking on its own while Redis is unreachable', async () => {
    const breakers = createBreakers({ store: settings, llm: settings, embedder: settings, cache: settings });
    const closedPort = await freePort();
    const sharing = BreakerSharing.start(breakers, {
      url: `redis://127.0.0.1:${closedPort}`,
      keyPrefix: freshPrefix(),
      workerId: 'alone',
    });
    sharings.push(sharing);
    for (let i = 0; i < settings.minCalls; i += 1) await expect(breakers.llm.run(fail)).rejects.toThrow('llm down');
    expect(breakers.llm.state).toBe('open');
    await expect(breakers.store.run(() => Promise.resolve(1))).resolves.toBe(1);
  });

  it('is wired into a worker runtime by RAGLINE_BREAKER_SHARED', async () => {
    const keyPrefix = freshPrefix();
    const dir = await mkdtemp(path.join(os.tmpdir(), 'ragline-shared-'));
    const config = loadConfig({
      RAGLINE_DATA_DIR: dir,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: keyPrefix,
      RAGLINE_BREAKER_SHARED: 'true',
    });
    const runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }) });
    try {
      await subscribed(keyPrefix, 1);
      const news = { dependency: 'store', state: 'open', until: Date.now() + 60_000, by: 'worker-elsewhere' };
      await raw.publish(`${keyPrefix}breakers`, JSON.stringify(news));
      await vi.waitFor(() => expect(runtime.breakers?.store.state).toBe('open'), { timeout: 5000 });
    } finally {
      await runtime.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start sharing without Redis or without breakers, naming the variable', () => {
    expect(() => loadConfig({ RAGLINE_BREAKER_SHARED: 'true' })).toThrow(ConfigError);
    expect(() => loadConfig({ RAGLINE_BREAKER_SHARED: 'true' })).toThrow(/RAGLINE_BREAKER_SHARED: .*REDIS_URL/);
    expect(() =>
      loadConfig({ RAGLINE_BREAKER_SHARED: 'true', RAGLINE_BREAKERS: 'false', REDIS_URL: 'redis://127.0.0.1:1' }),
    ).toThrow(/RAGLINE_BREAKER_SHARED: there are no breakers/);
    expect(
      loadConfig({ RAGLINE_BREAKER_SHARED: 'true', REDIS_URL: 'redis://127.0.0.1:1' }).RAGLINE_BREAKER_SHARED,
    ).toBe(true);
  });
});
