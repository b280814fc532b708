import { setTimeout as sleep } from 'node:timers/promises';
import type { Cache, CacheSetOptions } from './cache.js';

/** Concurrent calls with one key share one run of the work, inside this process. */
export class SingleFlight {
  private readonly inflight = new Map<string, Promise<unknown>>();

  /** `shared` is true when the caller joined a run already under way. */
  run<T>(key: string, work: () => Promise<T>): { promise: Promise<T>; shared: boolean } {
    const existing = this.inflight.get(key) as Promise<T> | undefined;
    if (existing) return { promise: existing, shared: true };
    const promise = work().finally(() => this.inflight.delete(key));
    this.inflight.set(key, promise);
    return { promise, shared: false };
  }

  get size(): number {
    return this.inflight.size;
  }
}

/**
 * Where a value came from: the cache, this call's own computation, a computation another caller in this process
 * ran, or another process's computation we waited for.
 */
export type ComputeSource = 'cache' | 'computed' | 'shared' | 'waited';

export interface StampedeOptions {
  /** How long the cross-process lock lasts; should exceed a typical computation. @default 10000 */
  lockMs?: number;
  /** How long a process that lost the lock polls the cache before computing itself. @default 3000 */
  waitMs?: number;
  /** First polling interval; it doubles up to 200 ms. @default 20 */
  pollMs?: number;
  /** In-process flights; by default one per cache instance. */
  flights?: SingleFlight;
  /** Called once per call with how the value was obtained, e.g. to count stampedes averted. */
  onSource?: (source: ComputeSource | 'timeout') => void;
}

export interface CachedValue<T> {
  value: T;
  source: ComputeSource;
}

// One flight table per cache: two caches stand for two processes, and share nothing in-process.
const flightsByCache = new WeakMap<Cache, SingleFlight>();

function flightsFor(cache: Cache): SingleFlight {
  let flights = flightsByCache.get(cache);
  if (!flights) flightsByCache.set(cache, (flights = new SingleFlight()));
  return flights;
}

/**
 * get → single-flight → cross-process lock → compute → set. A burst of identical misses computes once: callers in
 * this process share one promise; other processes that find the lock taken poll the cache for a bounded time and
 * only then compute themselves, so a crashed or slow lock holder delays them by at most `waitMs`. On a cache with no
 * lock (the in-process one) single-flight alone applies. Errors of `compute` reach every caller and are not cached;
 * cache failures never surface.
 */
export async function cachedCompute<T>(
  cache: Cache,
  key: string,
  setOptions: CacheSetOptions,
  compute: () => Promise<T>,
  options: StampedeOptions = {},
): Promise<CachedValue<T>> {
  const cached = await cache.get<T>(key);
  if (cached !== undefined) {
    options.onSource?.('cache');
    return { value: cached, source: 'cache' };
  }
  const flights = options.flights ?? flightsFor(cache);
  const { promise, shared } = flights.run(key, () => computeWithLock(cache, key, setOptions, compute, options));
  const result = await promise;
  if (shared) {
    options.onSource?.('shared');
    return { value: result.value, source: 'shared' };
  }
  options.onSource?.(result.timedOut ? 'timeout' : result.source);
  return { value: result.value, source: result.source };
}

async function computeWithLock<T>(
  cache: Cache,
  key: string,
  setOptions: CacheSetOptions,
  compute: () => Promise<T>,
  options: StampedeOptions,
): Promise<CachedValue<T> & { timedOut?: boolean }> {
  const lock = cache.tryLock ? await cache.tryLock(`compute:${key}`, options.lockMs ?? 10_000) : 'unavailable';
  if (lock === 'busy') {
    const deadline = Date.now() + (options.waitMs ?? 3000);
    let interval = options.pollMs ?? 20;
    while (Date.now() < deadline) {
      await sleep(Math.min(interval, Math.max(1, deadline - Date.now())));
      interval = Math.min(interval * 2, 200);
      const value = await cache.get<T>(key);
      if (value !== undefined) return { value, source: 'waited' };
    }
    const value = await compute();
    await cache.set(key, value, setOptions);
    return { value, source: 'computed', timedOut: true };
  }
  try {
    if (lock !== 'unavailable') {
      // The previous holder may have written the value between our miss and our lock.
      const value = await cache.get<T>(key);
      if (value !== undefined) return { value, source: 'waited' };
    }
    const value = await compute();
    await cache.set(key, value, setOptions);
    return { value, source: 'computed' };
  } finally {
    if (lock !== 'unavailable') await lock.release();
  }
}
