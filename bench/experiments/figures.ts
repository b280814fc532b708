/** Small helpers the retrieval experiments share for what they measure and how they print it. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

const gc: () => void = (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/** The process's resident set in MiB after two full collections, so an index's growth is measured, not garbage. */
export function settledRssMb(): number {
  gc();
  gc();
  return process.memoryUsage().rss / 2 ** 20;
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function round(value: number, digits = 4): number {
  return Number(value.toFixed(digits));
}

/** A run's scores as a list, best first, cut at `depth`. */
export const rankedList = (scores: Map<string, number> | undefined, depth: number) =>
  [...(scores ?? new Map<string, number>()).entries()]
    .map(([id, score]) => ({ id, score }))
    .sort((x, y) => y.score - x.score)
    .slice(0, depth);
