import {
  BrokenCircuitError,
  CircuitState,
  CountBreaker,
  circuitBreaker,
  handleWhen,
  IsolatedCircuitError,
} from 'cockatiel';
import type { CircuitBreakerPolicy } from 'cockatiel';
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
  constructor(readonly dependency: Dependency) {
    super(ErrorType.CircuitOpen, `circuit breaker for ${dependency} is open`);
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
  /** Transitions since the process started, in order, capped at the last 20. */
  transitions: Array<{ to: BreakerState; at: string }>;
}

/** A dependency's breaker: cockatiel's count-window breaker, with metrics and a readable state. */
export class DependencyBreaker {
  private readonly policy: CircuitBreakerPolicy;
  private readonly history: BreakerSnapshot['transitions'] = [];

  constructor(
    readonly dependency: Dependency,
    readonly settings: BreakerSettings,
    private readonly metrics?: BreakerMetrics,
    logger?: Logger,
  ) {
    this.policy = circuitBreaker(handleWhen(isDependencyFailure), {
      halfOpenAfter: settings.openMs,
      breaker: new CountBreaker({
        threshold: settings.failureRatio,
        size: settings.window,
        minimumNumberOfCalls: settings.minCalls,
      }),
    });
    metrics?.state.set({ dependency }, CircuitState.Closed);
    this.policy.onStateChange((state) => {
      const to = STATE_NAMES[state];
      this.history.push({ to, at: new Date().toISOString() });
      if (this.history.length > 20) this.history.shift();
      metrics?.state.set({ dependency }, state);
      metrics?.transitions.inc({ dependency, to });
      const line = { dependency, breaker: to };
      if (state === CircuitState.Open) logger?.warn(line, 'circuit breaker opened');
      else logger?.info(line, 'circuit breaker state changed');
    });
  }

  get state(): BreakerState {
    return STATE_NAMES[this.policy.state];
  }

  snapshot(): BreakerSnapshot {
    return { state: this.state, transitions: [...this.history] };
  }

  /**
   * Runs `fn` through the breaker; an open breaker throws {@link CircuitOpenError} without calling it. A call that
   * outlives `timeoutMs` counts as a failure, so a hanging dependency opens the breaker like a failing one does.
   */
  async run<T>(fn: () => Promise<T>, options: { timeoutMs?: number } = {}): Promise<T> {
    const { timeoutMs } = options;
    try {
      return await this.policy.execute(() =>
        timeoutMs === undefined ? fn() : withTimeout(fn(), timeoutMs, this.dependency),
      );
    } catch (error) {
      if (error instanceof BrokenCircuitError || error instanceof IsolatedCircuitError) {
        this.metrics?.rejected.inc({ dependency: this.dependency });
        throw new CircuitOpenError(this.dependency);
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
    const states = DEPENDENCIES.map((d) => `${d}=${breakers[d].state}`);
    const open = DEPENDENCIES.filter((d) => breakers[d].state === 'open' || breakers[d].state === 'isolated');
    return { ok: true, latencyMs: 0, detail: open.length > 0 ? `${states.join(' ')} (degraded)` : states.join(' ') };
  };
}
