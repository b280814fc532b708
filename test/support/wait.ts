import { inspect } from 'node:util';

/**
 * Reads `read()` until `done` holds and returns that value. A bound, not a synchronisation: the wait ends as soon as
 * the awaited state is seen, and when it never comes it fails within `timeoutMs` saying what was awaited and what
 * was last seen (instead of a bare test timeout). A read that throws counts as "not yet" and is what was last seen.
 */
export async function waitUntil<T>(
  what: string,
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  { timeoutMs = 45_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'nothing read yet';
  for (;;) {
    try {
      const value = await read();
      if (done(value)) return value;
      last = value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${inspect(last, { depth: 4 })}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
