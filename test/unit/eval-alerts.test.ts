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

  it('fires at once on a significant drop below the baseline, and keeps degraded batches out of the baseline', () => {
    const { events, state } = feed([
      [0.9, 100],
      [0.92, 100],
      [0.88, 100],
      [0.7, 100],
      [0.7, 100],
    ]);
    expect(events.map((e) => [e.name, e.state, e.batch])).toEqual([['quality', 'firing', 4]]);
    expect(events[0]!.reason).toMatch(/dropped below the baseline 0\.900/);
    expect(summarizeBaseline(state.baseline).batches).toBe(3);
    // A small wobble is not significant.
    expect(
      feed([
        [0.9, 100],
        [0.92, 100],
        [0.88, 100],
        [0.84, 100],
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
