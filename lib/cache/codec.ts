/**
 * The stored form of every cache value, shared by the memory and Redis caches so both treat a damaged or
 * outdated entry the same way: as a miss that the next set overwrites.
 */

/** Bump when the shape of cached values changes incompatibly: entries written under another version are misses. */
export const FORMAT_VERSION = 1;

interface Envelope {
  v: number;
  d: unknown;
}

export function encodeEntry(value: unknown): string {
  const envelope: Envelope = { v: FORMAT_VERSION, d: value };
  return JSON.stringify(envelope);
}

/** The value inside a stored entry, or undefined when the entry is not valid JSON or has another format version. */
export function decodeEntry<T>(raw: string): T | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || !('v' in parsed) || !('d' in parsed)) return undefined;
  const envelope = parsed as Envelope;
  return envelope.v === FORMAT_VERSION ? (envelope.d as T) : undefined;
}
