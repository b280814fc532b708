import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatFault, phase, startStack, untilClosed, type FaultReport, type Stack } from '../chaos/harness.js';

/**
 * The short form of `npm run chaos`: two worker processes sharing a real Qdrant (behind a fault proxy) on the real
 * stack, and the faults that matter most.
 * Asserted: nothing lost, every query answered, the breaker opening and the ladder's reasons; never a duration.
 */
describe('chaos (short form)', () => {
  let stack: Stack;
  const reports: FaultReport[] = [];

  beforeAll(async () => {
    stack = await startStack({ workers: 2, store: 'qdrant' });
  });
  afterAll(async () => {
    for (const r of reports) console.log(formatFault(r));
    await stack?.stop();
  });

  const expectNothingLost = (report: FaultReport) => {
    reports.push(report);
    expect(report.lost).toBe(0);
    expect(report.errors).toBe(0);
    expect(report.answered).toBe(report.sent);
  };

  it('loses nothing when a worker is killed with SIGKILL mid-load', async () => {
    const victim = stack.workers[1]!;
    let killed = false;
    const report = await phase(
      stack,
      'worker SIGKILL',
      { users: 6, queries: 5 },
      {
        during: (done) => {
          if (!killed && done >= 5) {
            killed = true;
            victim.child.kill('SIGKILL');
          }
        },
      },
    );
    expect(killed).toBe(true);
    expect(victim.child.signalCode).toBe('SIGKILL');
    expectNothingLost(report);
  });

  it('answers extractively through LLM 500s and hangs, with the LLM breaker opening', async () => {
    const errors = await phase(
      stack,
      'LLM 500s',
      { users: 4, queries: 4, seed: 11 },
      {
        before: async () => {
          stack.llm.mode = { kind: 'server-error', status: 500 };
        },
      },
    );
    expectNothingLost(errors);
    expect(errors.degradedByReason['generation-failed']).toBeGreaterThan(0);
    expect(errors.breakerTransitions).toContainEqual(expect.objectContaining({ dependency: 'llm', to: 'open' }));

    const hangs = await phase(
      stack,
      'LLM hangs',
      { users: 4, queries: 2, seed: 12 },
      {
        before: async () => {
          stack.llm.mode = { kind: 'hang' };
        },
        after: async () => {
          stack.llm.mode = { kind: 'answer' };
        },
      },
    );
    expectNothingLost(hangs);
    expect(hangs.degradedByReason['generation-failed']).toBe(hangs.load.latencyMs.degraded.count);
  });

  it('keeps answering while redis-server is stopped, and after it restarts', async () => {
    const down = await phase(
      stack,
      'redis stopped',
      { users: 4, queries: 4, seed: 21 },
      { before: () => stack.redis.stop() },
    );
    expectNothingLost(down);
    // Redis holds the cache and the parameter store; neither being down is a reason to fail retrieval.
    expect(down.degradedByReason['retrieval-unavailable'] ?? 0).toBe(0);
    const back = await phase(
      stack,
      'redis restarted',
      { users: 4, queries: 3, seed: 22 },
      { before: () => stack.redis.restart() },
    );
    expectNothingLost(back);
  });

  it('answers through the vector store failing and hanging; the store breaker opens, then closes on recovery', async () => {
    const proxy = stack.storeProxy!;
    const storeOpened = (r: FaultReport) =>
      r.breakerTransitions.filter((t) => t.dependency === 'store' && t.to === 'open').length;
    const storeReasons = (r: FaultReport) =>
      (r.degradedByReason['stale-cache'] ?? 0) + (r.degradedByReason['retrieval-unavailable'] ?? 0);

    for (const [fault, mode, seed] of [
      ['store 500s', 'fail', 31],
      ['store hangs', 'hang', 32],
    ] as const) {
      const since = stack.transitions().length;
      const before = proxy.seen[mode];
      const report = await phase(
        stack,
        fault,
        // New questions miss every cache level, so each one reaches the store.
        { users: 4, queries: 3, seed, newShare: 1 },
        { before: async () => proxy.set(mode), after: async () => proxy.set('pass') },
      );
      expectNothingLost(report);
      expect(proxy.seen[mode]).toBeGreaterThan(before);
      expect(storeReasons(report)).toBeGreaterThan(0);
      expect(storeOpened(report)).toBeGreaterThan(0);

      const recovery = await untilClosed(stack, 'store', since, { seed: seed * 100 });
      for (const r of recovery) expectNothingLost(r);
      const states = stack
        .transitions()
        .slice(since)
        .filter((t) => t.dependency === 'store');
      for (const worker of new Set(states.filter((t) => t.to === 'open').map((t) => t.worker))) {
        const mine = states.filter((t) => t.worker === worker).map((t) => t.to);
        expect(mine.lastIndexOf('closed')).toBeGreaterThan(mine.lastIndexOf('open'));
      }
    }
  });
});
