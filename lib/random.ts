/**
 * Seeded pseudo-random numbers for what must come out the same on every run: `ragline load`'s question mix and
 * pacing, and the benchmarks' synthetic corpora and vectors. One generator for all of them, so a seed means the same
 * sequence wherever it is used.
 *
 * mulberry32 (Tommy Ettinger's 32-bit generator): one 32-bit state, a period of 2^32, fast, and good enough for
 * sampling workloads; not for anything secret (use `node:crypto`), and not for workflow code (the Temporal sandbox
 * already makes `Math.random` deterministic there).
 */

/**
 * A generator of numbers uniform in [0, 1), each a multiple of 2^-32, fully determined by `seed` (taken as an unsigned
 * 32-bit integer): two generators with one seed return the same sequence, on any machine and Node version. Each
 * call to `seededRandom` starts a sequence of its own; nothing is shared between generators.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
