import {
  BrokenCircuitError,
  CircuitState,
  CountBreaker,
  circuitBreaker,
  handleWhen,
  IsolatedCircuitError,
} from 'cockatiel';
import type { CircuitBreakerPolicy, IBreaker } from 'cockatiel';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { HealthStatus } from '../domain.js';
import { ErrorType, RaglineError } from '../errors.js';
import type { Logger } from '../telemetry/logger.js';

/** The dependencies a query can lose; one breaker each per worker process. */
export const DEPENDENCIES = ['store', 'llm', 'embedder', 'cache'] as const;
export type Dependency = (typeof DEPENDENCIES)[number];

export interface BreakerSettings {
  /** Share of failed calls in the window that opens the breaker (0 < ratio ≤ 1). */
  failureRatio: number;
  /** Calls in the count window. */
  window: number;
  /** Calls the window must hold before the ratio can open the breaker. */
  minCalls: number;
  /** How long an open breaker refuses calls before it lets one probe through (half-open). */
  openMs: number;
  /**
   * Consecutive successful calls, the half-open probe first, before the breaker counts as recovered; a failure
   * among them opens it again at once. 1 (the default) closes on the probe alone.
   */
  halfOpenProbes?: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open' | 'isolated';

const STATE_NAMES: Record<CircuitState, BreakerState> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.Open]: 'open',
  [CircuitState.HalfOpen]: 'half-open',
  [CircuitState.Isolated]: 'isolated',
};

/** Thrown instead of calling a dependency whose breaker is open; the activity boundary makes it non-retryable. */
export class CircuitOpenError extends RaglineError {
  /** `retryAfterMs` is when the breaker will let a probe through: work that must not be dropped waits that long. */
  constructor(
    readonly dependency: Dependency,
    retryAfterMs?: number,
  ) {
    super(ErrorType.CircuitOpen, `circuit breaker for ${dependency} is open`, { retryAfterMs });
  }
}

/**
 * cockatiel closes its breaker on one good half-open probe. With `probes` > 1 the next `probes - 1` calls are still
 * on probation: the first failure among them opens the breaker again without waiting for the window's minimum.
 */
class ProbationBreaker implements IBreaker {
  private probation = 0;
  constructor(
    private readonly inner: CountBreaker,
    private readonly probes: number,
  ) {}

  get state(): unknown {
    return this.inner.state;
  }
  set state(value: unknown) {
    this.inner.state = value;
  }

  success(state: CircuitState): void {
    if (state === CircuitState.HalfOpen) this.probation = this.probes - 1;
    else if (this.probation > 0) this.probation -= 1;
    this.inner.success(state);
  }

  failure(state: CircuitState): boolean {
    const reopen = state === CircuitState.Closed && this.probation > 0;
    if (state !== CircuitState.Closed) this.probation = 0;
    const open = this.inner.failure(state);
    if (reopen) this.probation = 0;
    return open || reopen;
  }
}

/**
 * Failures that say the dependency is unwell. A rejected prompt, bad input or a cancelled call says nothing about
 * the dependency, so it neither opens the breaker nor closes it.
 */
export function isDependencyFailure(error: unknown): boolean {
  if (error instanceof CircuitOpenError) return false;
  if (error instanceof RaglineError) {
    return (
      error.type === ErrorType.Unavailable ||
      error.type === ErrorType.RateLimited ||
      error.type === ErrorType.BadResponse
    );
  }
  if (error instanceof Error && error.name === 'AbortError') return false;
  return true;
}

export interface BreakerMetrics {
  state: Gauge<'dependency'>;
  transitions: Counter<'dependency' | 'to'>;
  rejected: Counter<'dependency'>;
}

export function createBreakerMetrics(registry: Registry): BreakerMetrics {
  const registers = [registry];
  return {
    state: new Gauge({
      name: 'rag_breaker_state',
      help: 'Circuit breaker state per dependency: 0 closed, 1 open, 2 half-open, 3 isolated',
      labelNames: ['dependency'] as const,
      registers,
    }),
    transitions: new Counter({
      name: 'rag_breaker_transitions_total',
      help: 'Circuit breaker state changes per dependency, by the state entered',
      labelNames: ['dependency', 'to'] as const,
      registers,
    }),
    rejected: new Counter({
      name: 'rag_breaker_rejected_total',
      help: 'Calls refused at once because the dependency breaker was open',
      labelNames: ['dependency'] as const,
      registers,
    }),
  };
}

export interface BreakerSnapshot {
  state: BreakerState;
  /** Transitions since the process started, in order, capped at the last 20; `by` marks another worker's news. */
  transitions: Array<{ to: BreakerState; at: string; by?: string }>;
  /** The worker whose open breaker holds this one open, while it does (RAGLINE_BREAKER_SHARED). */
  heldOpenBy?: string;
}

/** Another worker's open breaker, held here until `until` (epoch ms) or until that worker reports recovery. */
interface Hold {
  by: string;
  until: number;
  timer: NodeJS.Timeout;
}

/** A dependency's breaker: cockatiel's count-window breaker, with metrics and a readable state. */
export class DependencyBreaker {
  private readonly policy: CircuitBreakerPolicy;
  private readonly history: BreakerSnapshot['transitions'] = [];
  private readonly listeners: Array<(state: BreakerState, retryAfterMs: number) => void> = [];
  private openedAt = 0;
  private hold?: Hold;

  constructor(
    readonly dependency: Dependency,
    readonly settings: BreakerSettings,
    private readonly metrics?: BreakerMetrics,
    logger?: Logger,
  ) {
    const counts = new CountBreaker({
      threshold: settings.failureRatio,
      size: settings.window,
      minimumNumberOfCalls: settings.minCalls,
    });
    this.policy = circuitBreaker(handleWhen(isDependencyFailure), {
      halfOpenAfter: settings.openMs,
      breaker: new ProbationBreaker(counts, settings.halfOpenProbes ?? 1),
    });
    metrics?.state.set({ dependency }, CircuitState.Closed);
    this.policy.onStateChange((state) => {
      const to = STATE_NAMES[state];
      if (state === CircuitState.Open) this.openedAt = Date.now();
      this.record(to);
      // A held breaker stays open to callers whatever its own window does meanwhile.
      if (!this.hold) metrics?.state.set({ dependency }, state);
      metrics?.transitions.inc({ dependency, to });
      const line = { dependency, breaker: to };
      if (state === CircuitState.Open) logger?.warn(line, 'circuit breaker opened');
      else logger?.info(line, 'circuit breaker state changed');
      for (const listener of this.listeners) listener(to, this.retryAfterMs);
    });
  }

  get state(): BreakerState {
    const own = STATE_NAMES[this.policy.state];
    return this.hold && own !== 'isolated' ? 'open' : own;
  }

  /** How long until an open breaker lets a probe through: 0 once it may, the whole open period when held open. */
  get retryAfterMs(): number {
    const held = this.hold ? Math.max(0, this.hold.until - Date.now()) : 0;
    if (this.policy.state === CircuitState.Isolated) return this.settings.openMs;
    if (this.policy.state !== CircuitState.Open) return held;
    return Math.max(held, this.openedAt + this.settings.openMs - Date.now());
  }

  /**
   * Whether a call made now would be refused without reaching the dependency. False once the open period is over:
   * the next call is the half-open probe, and a caller that skipped calls on this answer would keep it open forever.
   */
  get refusing(): boolean {
    // Held open by another worker's breaker: `run` refuses until the hold ends, whatever this one's own state.
    if (this.hold) return true;
    const state = this.policy.state;
    return state === CircuitState.Isolated || (state === CircuitState.Open && this.retryAfterMs > 0);
  }

  /** Counts a call its caller skipped because {@link refusing} said it would be refused, as `run` counts one. */
  countRefusal(): void {
    this.metrics?.rejected.inc({ dependency: this.dependency });
  }

  snapshot(): BreakerSnapshot {
    return {
      state: this.state,
      transitions: [...this.history],
      ...(this.hold ? { heldOpenBy: this.hold.by } : {}),
    };
  }

  /**
   * Told of this breaker's own transitions (not of holds), with how long an open one refuses calls: what another
   * worker needs to hold its breaker open too.
   */
  onStateChange(listener: (state: BreakerState, retryAfterMs: number) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Refuses calls until `until` (epoch ms) because another worker's breaker for this dependency opened; the calls
   * this worker makes meanwhile would only fail too. A later hold extends an earlier one.
   */
  holdOpen(until: number, by: string): void {
    const remaining = until - Date.now();
    if (remaining <= 0 || (this.hold && this.hold.until >= until)) return;
    if (this.hold) clearTimeout(this.hold.timer);
    else this.record('open', by);
    const timer = setTimeout(() => this.release(by), remaining);
    timer.unref();
    this.hold = { by, until, timer };
    this.metrics?.state.set({ dependency: this.dependency }, CircuitState.Open);
  }

  /** Ends a hold: its period ran out, or the worker that opened it saw the dependency recover. */
  release(by: string): void {
    if (!this.hold) return;
    clearTimeout(this.hold.timer);
    this.hold = undefined;
    this.record(STATE_NAMES[this.policy.state], by);
    this.metrics?.state.set({ dependency: this.dependency }, this.policy.state);
  }

  private record(to: BreakerState, by?: string): void {
    this.history.push({ to, at: new Date().toISOString(), ...(by ? { by } : {}) });
    if (this.history.length > 20) this.history.shift();
  }

  /**
   * Runs `fn` through the breaker; an open breaker throws {@link CircuitOpenError} without calling it. A call that
   * outlives `timeoutMs` counts as a failure, so a hanging dependency opens the breaker like a failing one does.
   */
  async run<T>(fn: () => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
    const { timeoutMs } = options;
    if (this.hold) {
      this.metrics?.rejected.inc({ dependency: this.dependency });
      throw new CircuitOpenError(this.dependency, this.retryAfterMs);
    }
    try {
      return await this.policy.execute(() =>
        timeoutMs === undefined ? fn() : withTimeout(fn(), timeoutMs, this.dependency),
      );
    } catch (error) {
      if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError) {
        this.metrics?.rejected.inc({ dependency: this.dependency });
        throw new CircuitOpenError(this.dependency, this.retryAfterMs);
      }
      throw error;
    }
  }

  /** Holds the breaker open by hand (chaos drills, an operator draining a dependency); dispose to release. */
  isolate(): { dispose(): void } {
    return this.policy.isolate();
  }
}

async function withTimeout<T>(work: Promise<T>, timeoutMs: number, dependency: Dependency): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new RaglineError(ErrorType.Unavailable, `${dependency} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export type Breakers = Record<Dependency, DependencyBreaker>;

/** The dependencies whose breaker would refuse a call made now, in {@link DEPENDENCIES} order. */
export function refusedDependencies(breakers: Breakers | undefined): Dependency[] {
  return breakers ? DEPENDENCIES.filter((d) => breakers[d].refusing) : [];
}

export function createBreakers(
  settings: Record<Dependency, BreakerSettings>,
  options: { registry?: Registry; logger?: Logger } = {},
): Breakers {
  const metrics = options.registry ? createBreakerMetrics(options.registry) : undefined;
  const entries = DEPENDENCIES.map((d) => [d, new DependencyBreaker(d, settings[d], metrics, options.logger)]);
  return Object.fromEntries(entries) as Breakers;
}

/**
 * One readiness entry for all breakers. It stays ok while a breaker is open: the worker still answers (degraded),
 * so taking it out of rotation would only move the same outage elsewhere; the states are in the detail.
 */
export function breakersHealth(breakers: Breakers): () => Promise<HealthStatus> {
  return async () => {
    const states = DEPENDENCIES.map((d) => {
      const { state, heldOpenBy } = breakers[d].snapshot();
      return heldOpenBy ? `${d}=${state} (held by ${heldOpenBy})` : `${d}=${state}`;
    });
    const open = DEPENDENCIES.filter((d) => breakers[d].state === 'open' || breakers[d].state === 'isolated');
    return { ok: true, latencyMs: 0, detail: open.length > 0 ? `${states.join(' ')} (degraded)` : states.join(' ') };
  };
}
