/**
 * Evaluation alerts that avoid fatigue. Pure and deterministic (the evaluation workflow runs it), no runtime
 * dependencies.
 *
 * - `quality` fires when batch quality stays below the threshold for `consecutiveBatches` batches that together hold
 *   at least `minSamples` questions, or at once when the same questions score significantly worse than they did in
 *   healthy batches: a paired comparison (mean drop of per-question quality > `minDrop` over at least `minSamples`
 *   questions). Comparing batch means with each other instead would mistake a batch of harder questions for a
 *   degradation: batches differ in their questions, and the soak showed a cycle of batches doing exactly that.
 * - `latency` fires when the batch p95 stays above the limit the same way.
 * - A firing alert is not re-announced (one `firing` event per episode) and resolves after `resolveBatches`
 *   consecutive healthy batches. Batches while an alert is breached or firing do not enter the baseline, so a
 *   degradation cannot become the new normal.
 */

export type AlertName = 'quality' | 'latency';

export interface AlertPolicy {
  /** @default 0.6 (the seed's threshold) */
  qualityThreshold: number;
  /** @default 2000 (the seed's threshold) */
  latencyP95Ms: number;
  /** Questions a breach must span before it fires. @default 10 */
  minSamples: number;
  /** Consecutive breaching batches before a threshold alert fires. @default 3 */
  consecutiveBatches: number;
  /** Consecutive healthy batches before a firing alert resolves. @default 2 */
  resolveBatches: number;
  /** Healthy batches kept in the rolling baseline (reported as the trend's reference). @default 12 */
  baselineWindow: number;
  /** Mean per-question quality drop, against the same questions when healthy, that counts as significant. @default 0.1 */
  minDrop: number;
}

export const DEFAULT_ALERT_POLICY: AlertPolicy = {
  qualityThreshold: 0.6,
  latencyP95Ms: 2000,
  minSamples: 10,
  consecutiveBatches: 3,
  resolveBatches: 2,
  baselineWindow: 12,
  minDrop: 0.1,
};

/** Questions whose healthy quality is remembered for the paired comparison; beyond it, the oldest are forgotten. */
export const REFERENCE_LIMIT = 5000;

export interface AlertStatus {
  name: AlertName;
  firing: boolean;
  /** Batch number at which it fired. */
  firedAtBatch?: number;
  firedAt?: string;
  /** Consecutive breaching batches and the questions they hold. */
  breaches: number;
  breachSamples: number;
  /** Consecutive healthy batches while firing. */
  recoveries: number;
  reason?: string;
  value?: number;
}

export interface AlertEvent {
  name: AlertName;
  state: 'firing' | 'resolved';
  reason: string;
  value: number;
  threshold: number;
  batch: number;
  at: string;
}

/** Rolling baseline of healthy batches (bounded by `baselineWindow`). */
export interface Baseline {
  quality: number[];
  latencyP95Ms: number[];
}

export interface BaselineSummary {
  batches: number;
  qualityMean: number;
  qualityStd: number;
  latencyP95MeanMs: number;
}

export interface AlertState {
  alerts: Record<AlertName, AlertStatus>;
  baseline: Baseline;
  /** question id → its quality in the last healthy batch that held it. Absent in states saved before it existed. */
  reference?: Record<string, number>;
}

export interface BatchFigures {
  batch: number;
  at: string;
  samples: number;
  quality: number;
  latencyP95Ms: number;
  /** Per-question quality of this batch (question id → quality), for the paired comparison. */
  itemQuality?: Record<string, number>;
}

export function initialAlertState(): AlertState {
  const status = (name: AlertName): AlertStatus => ({
    name,
    firing: false,
    breaches: 0,
    breachSamples: 0,
    recoveries: 0,
  });
  return {
    alerts: { quality: status('quality'), latency: status('latency') },
    baseline: { quality: [], latencyP95Ms: [] },
  };
}

export function summarizeBaseline(baseline: Baseline): BaselineSummary {
  const n = baseline.quality.length;
  const mean = n === 0 ? 0 : baseline.quality.reduce((s, v) => s + v, 0) / n;
  const variance = n < 2 ? 0 : baseline.quality.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1);
  const latency = baseline.latencyP95Ms;
  return {
    batches: n,
    qualityMean: mean,
    qualityStd: Math.sqrt(variance),
    latencyP95MeanMs: latency.length === 0 ? 0 : latency.reduce((s, v) => s + v, 0) / latency.length,
  };
}

/** Folds one batch into the alert state; returns the new state and the events to announce (at most one per alert). */
export function updateAlerts(
  state: AlertState,
  figures: BatchFigures,
  policy: AlertPolicy,
): { state: AlertState; events: AlertEvent[] } {
  const base = summarizeBaseline(state.baseline);
  const events: AlertEvent[] = [];
  const reference = state.reference ?? {};
  const paired = pairedDrop(reference, figures.itemQuality ?? {});
  const dropped = paired.samples >= policy.minSamples && paired.drop > policy.minDrop;
  const belowThreshold = figures.quality < policy.qualityThreshold;
  const quality = step(
    state.alerts.quality,
    figures,
    policy,
    belowThreshold || dropped,
    dropped,
    belowThreshold ? figures.quality : paired.drop,
    belowThreshold ? policy.qualityThreshold : policy.minDrop,
    belowThreshold
      ? `quality ${figures.quality.toFixed(3)} below ${policy.qualityThreshold}`
      : `the same ${paired.samples} questions scored ${paired.drop.toFixed(3)} lower than when healthy (quality ${figures.quality.toFixed(3)}, baseline ${base.qualityMean.toFixed(3)})`,
    events,
  );
  const latency = step(
    state.alerts.latency,
    figures,
    policy,
    figures.latencyP95Ms > policy.latencyP95Ms,
    false,
    figures.latencyP95Ms,
    policy.latencyP95Ms,
    `p95 latency ${Math.round(figures.latencyP95Ms)} ms above ${policy.latencyP95Ms} ms`,
    events,
  );
  const healthy = !quality.firing && quality.breaches === 0 && !latency.firing && latency.breaches === 0;
  const keep = (values: number[], value: number) => [...values, value].slice(-policy.baselineWindow);
  const baseline =
    healthy && figures.samples > 0
      ? {
          quality: keep(state.baseline.quality, figures.quality),
          latencyP95Ms: keep(state.baseline.latencyP95Ms, figures.latencyP95Ms),
        }
      : state.baseline;
  const qualityHealthy = !quality.firing && quality.breaches === 0;
  return {
    state: {
      alerts: { quality, latency },
      baseline,
      reference: qualityHealthy ? remember(reference, figures.itemQuality ?? {}) : reference,
    },
    events,
  };
}

function step(
  current: AlertStatus,
  figures: BatchFigures,
  policy: AlertPolicy,
  breached: boolean,
  significant: boolean,
  value: number,
  threshold: number,
  reason: string,
  events: AlertEvent[],
): AlertStatus {
  // A batch too small to judge (every question failed to run, or an empty sample) changes nothing.
  if (figures.samples === 0) return current;
  const next: AlertStatus = { ...current, value };
  if (breached) {
    next.breaches = current.breaches + 1;
    next.breachSamples = current.breachSamples + figures.samples;
    next.recoveries = 0;
    const enoughSamples = next.breachSamples >= policy.minSamples;
    if (!current.firing && enoughSamples && (significant || next.breaches >= policy.consecutiveBatches)) {
      next.firing = true;
      next.firedAtBatch = figures.batch;
      next.firedAt = figures.at;
      next.reason = reason;
      events.push({
        name: current.name,
        state: 'firing',
        reason,
        value,
        threshold,
        batch: figures.batch,
        at: figures.at,
      });
    }
    return next;
  }
  next.breaches = 0;
  next.breachSamples = 0;
  if (!current.firing) return next;
  next.recoveries = current.recoveries + 1;
  if (next.recoveries >= policy.resolveBatches) {
    events.push({
      name: current.name,
      state: 'resolved',
      reason: `recovered for ${next.recoveries} batches (${current.reason ?? ''})`,
      value,
      threshold,
      batch: figures.batch,
      at: figures.at,
    });
    return { name: current.name, firing: false, breaches: 0, breachSamples: 0, recoveries: 0, value };
  }
  return next;
}

/** Mean of (reference − current) over the questions that have a reference, and how many there were. */
export function pairedDrop(
  reference: Record<string, number>,
  current: Record<string, number>,
): { drop: number; samples: number } {
  let sum = 0;
  let samples = 0;
  for (const [id, quality] of Object.entries(current)) {
    const before = reference[id];
    if (before === undefined) continue;
    sum += before - quality;
    samples += 1;
  }
  return { drop: samples === 0 ? 0 : sum / samples, samples };
}

function remember(reference: Record<string, number>, current: Record<string, number>): Record<string, number> {
  const next = { ...reference, ...current };
  const ids = Object.keys(next);
  for (const id of ids.slice(0, Math.max(0, ids.length - REFERENCE_LIMIT))) delete next[id];
  return next;
}
