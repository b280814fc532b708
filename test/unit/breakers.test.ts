import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import {
  CircuitOpenError,
  createBreakers,
  DependencyBreaker,
  refusedDependencies,
} from '../../lib/resilience/breakers.js';
import { guardCache } from '../../lib/resilience/guarded.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import type { Cache } from '../../lib/cache/cache.js';

const settings = { failureRatio: 0.5, window: 4, minCalls: 4, openMs: 60_000 };
const fail = () => Promise.reject(new RaglineError(ErrorType.Unavailable, 'down'));

describe('dependency breakers', () => {
  it('stays closed below its minimum calls, opens at it, then refuses without calling', async () => {
    const breaker = new DependencyBreaker('store', settings);
    let calls = 0;
    const failing = () => {
      calls += 1;
      return fail();
    };
    for (let i = 0; i < 3; i += 1) await expect(breaker.run(failing)).rejects.toThrow('down');
    expect(breaker.state).toBe('closed');
    await expect(breaker.run(failing)).rejects.toThrow('down');
    expect(breaker.state).toBe('open');
    await expect(breaker.run(failing)).rejects.toBeInstanceOf(CircuitOpenError);
    await expect(breaker.run(failing)).rejects.toMatchObject({ type: ErrorType.CircuitOpen });
    expect(calls).toBe(4);
  });

  it('says it is refusing while open, and not once the open period is over, so the next call is the probe', async () => {
    vi.useFakeTimers();
    try {
      const breakers = createBreakers({
        store: settings,
        llm: { ...settings, minCalls: 1, window: 1, openMs: 1000 },
        embedder: settings,
        cache: settings,
      });
      expect(refusedDependencies(breakers)).toEqual([]);
      await expect(breakers.llm.run(fail)).rejects.toThrow('down');
      expect(breakers.llm.refusing).toBe(true);
      expect(refusedDependencies(breakers)).toEqual(['llm']);
      vi.advanceTimersByTime(1000);
      // Still 'open' to cockatiel until a call arrives, yet that call would go through as the half-open probe.
      expect(breakers.llm.state).toBe('open');
      expect(breakers.llm.refusing).toBe(false);
      await expect(breakers.llm.run(() => Promise.resolve('ok'))).resolves.toBe('ok');
      expect(breakers.llm.state).toBe('closed');
      const held = breakers.store.isolate();
      expect(refusedDependencies(breakers)).toEqual(['store']);
      held.dispose();
      expect(refusedDependencies(breakers)).toEqual([]);
      // Held open by another worker's breaker (RAGLINE_BREAKER_SHARED): refusing until the hold ends.
      breakers.embedder.holdOpen(Date.now() + 1000, 'worker-b');
      expect(refusedDependencies(breakers)).toEqual(['embedder']);
      vi.advanceTimersByTime(1000);
      expect(refusedDependencies(breakers)).toEqual([]);
      expect(refusedDependencies(undefined)).toEqual([]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not count a rejected request (bad input, context too long) as the dependency failing', async () => {
    const breaker = new DependencyBreaker('llm', settings);
    const rejected = () => Promise.reject(new RaglineError(ErrorType.ContextLength, 'too long'));
    for (let i = 0; i < 8; i += 1) await expect(breaker.run(rejected)).rejects.toThrow('too long');
    expect(breaker.state).toBe('closed');
  });

  it('counts a call that outlives its timeout as a failure', async () => {
    const breaker = new DependencyBreaker('llm', { ...settings, minCalls: 1, window: 1 });
    const hang = () => new Promise<never>(() => undefined);
    await expect(breaker.run(hang, { timeoutMs: 20 })).rejects.toThrow(/did not answer within 20 ms/);
    expect(breaker.state).toBe('open');
  });

  it('records state and transitions as metrics', async () => {
    const registry = new Registry();
    const breakers = createBreakers(
      { store: settings, llm: settings, embedder: settings, cache: { ...settings, minCalls: 1, window: 1 } },
      { registry },
    );
    await expect(breakers.cache.run(fail)).rejects.toThrow();
    await expect(breakers.cache.run(fail)).rejects.toBeInstanceOf(CircuitOpenError);
    const json = await registry.getMetricsAsJSON();
    const value = (name: string, labels: Record<string, string>) =>
      json.find((m) => m.name === name)?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
        ?.value;
    expect(value('rag_breaker_state', { dependency: 'cache' })).toBe(1);
    expect(value('rag_breaker_state', { dependency: 'llm' })).toBe(0);
    expect(value('rag_breaker_transitions_total', { dependency: 'cache', to: 'open' })).toBe(1);
    expect(value('rag_breaker_rejected_total', { dependency: 'cache' })).toBe(1);
  });

  it('turns cache calls into instant misses while the cache breaker is open', async () => {
    let lookups = 0;
    const inner = new MemoryCache({ maxEntries: 10 });
    const broken: Cache = {
      ...inner,
      kind: 'redis',
      get: () => Promise.resolve(undefined),
      set: (key, value, options) => inner.set(key, value, options),
      delete: (keys) => inner.delete(keys),
      invalidateTags: (tags) => inner.invalidateTags(tags),
      health: () => inner.health(),
      close: () => inner.close(),
      lookup: async () => {
        lookups += 1;
        return { outcome: 'error' };
      },
    };
    const breaker = new DependencyBreaker('cache', { ...settings, minCalls: 2, window: 2 });
    const cache = guardCache(broken, breaker);
    expect(await cache.lookup?.('result:t:k')).toEqual({ outcome: 'error' });
    expect(await cache.get('result:t:k')).toBeUndefined();
    expect(breaker.state).toBe('open');
    expect(await cache.lookup?.('result:t:k')).toEqual({ outcome: 'error' });
    expect(lookups).toBe(2);
  });

  describe('half-open probes', () => {
    afterEach(() => {
      vi.useRealTimers();
    });
    const open = async (breaker: DependencyBreaker) => {
      for (let i = 0; i < 4; i += 1) await expect(breaker.run(fail)).rejects.toThrow('down');
      expect(breaker.state).toBe('open');
    };
    const ok = () => Promise.resolve('ok');

    it('says when the open breaker will let a probe through', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const breaker = new DependencyBreaker('store', { ...settings, openMs: 1000 });
      await open(breaker);
      vi.advanceTimersByTime(400);
      await expect(breaker.run(ok)).rejects.toMatchObject({ type: ErrorType.CircuitOpen, retryAfterMs: 600 });
      vi.advanceTimersByTime(600);
      expect(breaker.retryAfterMs).toBe(0);
      await expect(breaker.run(ok)).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
    });

    it('with one probe, closes on it and then needs the window minimum to open again', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const breaker = new DependencyBreaker('store', { ...settings, openMs: 1000, halfOpenProbes: 1 });
      await open(breaker);
      vi.advanceTimersByTime(1000);
      await expect(breaker.run(ok)).resolves.toBe('ok');
      await expect(breaker.run(fail)).rejects.toThrow('down');
      expect(breaker.state).toBe('closed');
    });

    it('with three probes, a failure on the second or third call after the probe opens it again at once', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      const breaker = new DependencyBreaker('store', { ...settings, openMs: 1000, halfOpenProbes: 3 });
      await open(breaker);
      vi.advanceTimersByTime(1000);
      await expect(breaker.run(ok)).resolves.toBe('ok');
      await expect(breaker.run(ok)).resolves.toBe('ok');
      await expect(breaker.run(fail)).rejects.toThrow('down');
      expect(breaker.state).toBe('open');
      expect(breaker.snapshot().transitions.map((t) => t.to)).toEqual(['open', 'half-open', 'closed', 'open']);

      // Three good calls in a row end the probation: from then on one failure no longer opens it.
      vi.advanceTimersByTime(1000);
      for (let i = 0; i < 3; i += 1) await expect(breaker.run(ok)).resolves.toBe('ok');
      await expect(breaker.run(fail)).rejects.toThrow('down');
      expect(breaker.state).toBe('closed');
    });
  });
});
