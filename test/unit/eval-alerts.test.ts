import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ALERT_POLICY,
  initialAlertState,
  summarizeBaseline,
  updateAlerts,
  type AlertEvent,
  type AlertState,
} from '../../lib/eval/alerts.js';

/** Feeds batches (quality, p95 ms, samples) through the alert logic; returns the state and every event. */
function feed(batches: Array<[number, number, number?]>, policy = DEFAULT_ALERT_POLICY, from?: AlertState) {
  let state = from ?? initialAlertState();
  const events: AlertEvent[] = [];
  batches.forEach(([quality, latencyP95Ms, samples = 10], i) => {
    const update = updateAlerts(state, { batch: i + 1, at: `t${i + 1}`, samples, quality, latencyP95Ms }, policy);
    state = update.state;
    events.push(...update.events);
  });
  return { state, events };
}

describe('evaluation alerts', () => {
  it('fires the threshold alert only after consecutive breaching batches, once, and resolves after recovery', () => {
    const { events, state } = feed([
      [0.5, 100],
      [0.9, 100],
      [0.5, 100],
      [0.5, 100],
      [0.5, 100],
      [0.4, 100],
      [0.45, 100],
      [0.8, 100],
      [0.5, 100],
      [0.8, 100],
      [0.8, 100],
    ]);
    expect(events.map((e) => [e.name, e.state, e.batch])).toEqual([
      ['quality', 'firing', 5],
      ['quality', 'resolved', 11],
    ]);
    expect(state.alerts.quality.firing).toBe(false);
  });

  it('needs the minimum number of samples across the breach', () => {
    const small = feed([
      [0.1, 100, 3],
      [0.1, 100, 3],
      [0.1, 100, 3],
    ]);
    expect(small.events).toEqual([]);
    expect(
      feed([
        [0.1, 100, 3],
        [0.1, 100, 3],
        [0.1, 100, 3],
        [0.1, 100, 3],
      ]).events,
    ).toHaveLength(1);
  });

  it('fires at once when the same questions score significantly worse than when healthy', () => {
    const items = (offset: number, quality: number) =>
      Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`q${offset + i}`, quality]));
    const run = (batches: Array<[number, Record<string, number>]>) => {
      let state = initialAlertState();
      const events: AlertEvent[] = [];
      batches.forEach(([quality, itemQuality], i) => {
        const update = updateAlerts(
          state,
          { batch: i + 1, at: `t${i + 1}`, samples: 10, quality, latencyP95Ms: 100, itemQuality },
          DEFAULT_ALERT_POLICY,
        );
        state = update.state;
        events.push(...update.events);
      });
      return { state, events };
    };
    // Two batches of different questions with different (healthy) quality, cycling: no alert, however far apart.
    const cycling = run([
      [0.95, items(0, 0.95)],
      [0.65, items(10, 0.65)],
      [0.95, items(0, 0.95)],
      [0.65, items(10, 0.65)],
    ]);
    expect(cycling.events).toEqual([]);
    // The same questions 0.2 lower: fires at once, above the threshold, and is kept out of the reference.
    const { events, state } = run([
      [0.95, items(0, 0.95)],
      [0.65, items(10, 0.65)],
      [0.75, items(0, 0.75)],
      [0.75, items(0, 0.75)],
    ]);
    expect(events.map((e) => [e.name, e.state, e.batch])).toEqual([['quality', 'firing', 3]]);
    expect(events[0]!.reason).toMatch(/^the same 10 questions scored 0\.200 lower than when healthy/);
    expect(state.reference?.q0).toBe(0.95);
    expect(summarizeBaseline(state.baseline).batches).toBe(2);
    // A small wobble is not significant.
    expect(
      run([
        [0.95, items(0, 0.95)],
        [0.9, items(0, 0.9)],
      ]).events,
    ).toEqual([]);
  });

  it('watches p95 latency separately from quality', () => {
    const { events } = feed([
      [0.9, 2500],
      [0.9, 2600],
      [0.9, 2700],
      [0.9, 150],
      [0.9, 150],
    ]);
    expect(events.map((e) => [e.name, e.state, e.batch])).toEqual([
      ['latency', 'firing', 3],
      ['latency', 'resolved', 5],
    ]);
  });

  it('ignores a batch without samples', () => {
    const { state, events } = feed([[0, 0, 0]]);
    expect(events).toEqual([]);
    expect(state.baseline.quality).toEqual([]);
  });
});
