import { setTimeout as sleep } from 'node:timers/promises';
import type { Cache, CacheSetOptions } from './cache.js';

interface Flight {
  promise: Promise<unknown>;
  controller: AbortController;
  /** Callers still waiting for the result; the work is aborted when the last of them is cancelled. */
  waiters: number;
}

/**
 * Concurrent calls with one key share one run of the work, inside this process. The work gets a signal of its own,
 * aborted only when every caller that joined it has been cancelled: one query giving up must not cancel the others'
 * answer. A cancelled caller stops waiting at once, rejected with its signal's reason.
 */
export class SingleFlight {
  private readonly inflight = new Map<string, Flight>();

  /** `shared` is true when the caller joined a run already under way. */
  run<T>(
    key: string,
    work: (signal: AbortSignal) => Promise<T>,
    signal?: AbortSignal,
  ): { promise: Promise<T>; shared: boolean } {
    if (signal?.aborted) return { promise: Promise.reject(abortReason(signal)), shared: false };
    const existing = this.inflight.get(key);
    const shared = existing !== undefined;
    const flight = existing ?? this.start(key, work);
    flight.waiters += 1;
    return { promise: this.wait(flight, key, signal) as Promise<T>, shared };
  }

  get size(): number {
    return this.inflight.size;
  }

  private start<T>(key: string, work: (signal: AbortSignal) => Promise<T>): Flight {
    const controller = new AbortController();
    const flight: Flight = { promise: Promise.resolve(), controller, waiters: 0 };
    flight.promise = work(controller.signal).finally(() => {
      if (this.inflight.get(key) === flight) this.inflight.delete(key);
    });
    this.inflight.set(key, flight);
    return flight;
  }

  private wait(flight: Flight, key: string, signal: AbortSignal | undefined): Promise<unknown> {
    if (!signal) return flight.promise;
    return new Promise((resolve, reject) => {
      const leave = () => {
        flight.waiters -= 1;
        if (flight.waiters === 0) {
          // Nobody is left to use the result: stop the work, and let the next caller start afresh.
          if (this.inflight.get(key) === flight) this.inflight.delete(key);
          flight.controller.abort(abortReason(signal));
        }
        reject(abortReason(signal));
      };
      signal.addEventListener('abort', leave, { once: true });
      flight.promise.then(
        (value) => {
          signal.removeEventListener('abort', leave);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(error);
        },
      );
    });
  }
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('cancelled', 'AbortError');
}

/**
 * Where a value came from: the cache, this call's own computation, a computation another caller in this process
 * ran, or another process's computation we waited for.
 */
export type ComputeSource = 'cache' | 'computed' | 'shared' | 'waited';

export interface StampedeOptions {
  /**
   * TTL of the cross-process lock. The holder renews it every third of this while it computes, so it may be far
   * shorter than a computation: it is how long waiters keep waiting on a holder that died. @default 10000
   */
  lockMs?: number;
  /** How long a process that lost the lock polls the cache before computing itself. @default 3000 */
  waitMs?: number;
  /** First polling interval; it doubles up to 200 ms. @default 20 */
  pollMs?: number;
  /** In-process flights; by default one per cache instance. */
  flights?: SingleFlight;
  /** Called once per call with how the value was obtained, e.g. to count stampedes averted. */
  onSource?: (source: ComputeSource | 'timeout') => void;
  /** This caller's cancellation: it stops waiting, and the computation stops once no caller is left. */
  signal?: AbortSignal;
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
  compute: (signal: AbortSignal) => Promise<T>,
  options: StampedeOptions = {},
): Promise<CachedValue<T>> {
  const cached = await cache.get<T>(key);
  if (cached !== undefined) {
    options.onSource?.('cache');
    return { value: cached, source: 'cache' };
  }
  const flights = options.flights ?? flightsFor(cache);
  const { promise, shared } = flights.run(
    key,
    (signal) => computeWithLock(cache, key, setOptions, compute, options, signal),
    options.signal,
  );
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
  compute: (signal: AbortSignal) => Promise<T>,
  options: StampedeOptions,
  signal: AbortSignal,
): Promise<CachedValue<T> & { timedOut?: boolean }> {
  const lockMs = options.lockMs ?? 10_000;
  const takeLock = () =>
    cache.tryLock ? cache.tryLock(`compute:${key}`, lockMs) : Promise.resolve('unavailable' as const);
  let lock = await takeLock();
  if (lock === 'busy') {
    const deadline = Date.now() + (options.waitMs ?? 3000);
    let interval = options.pollMs ?? 20;
    while (lock === 'busy' && Date.now() < deadline) {
      await sleep(Math.min(interval, Math.max(1, deadline - Date.now())), undefined, { signal });
      interval = Math.min(interval * 2, 200);
      const value = await cache.get<T>(key);
      if (value !== undefined) return { value, source: 'waited' };
      // A live holder keeps renewing its lock; one that died stops, and its lock lapses: take the work over.
      lock = await takeLock();
    }
    if (lock === 'busy') {
      const value = await compute(signal);
      await cache.set(key, value, setOptions);
      return { value, source: 'computed', timedOut: true };
    }
  }
  const held = lock === 'unavailable' ? undefined : lock;
  const renewal = held?.extend
    ? setInterval(() => void held.extend?.(lockMs), Math.max(1, Math.floor(lockMs / 3)))
    : undefined;
  try {
    if (held) {
      // The previous holder may have written the value between our miss and our lock.
      const value = await cache.get<T>(key);
      if (value !== undefined) return { value, source: 'waited' };
    }
    const value = await compute(signal);
    await cache.set(key, value, setOptions);
    return { value, source: 'computed' };
  } finally {
    clearInterval(renewal);
    await held?.release();
  }
}
