import { createHmac } from 'node:crypto';

/**
 * The query text as it may appear in logs and stores: unchanged without a key, or (RAGLINE_LOG_REDACT_QUERIES) its
 * HMAC-SHA256 under RAGLINE_REDACT_KEY. A hash rather than a blank keeps repeated questions recognisable across lines;
 * a keyed one, unlike a plain hash, cannot be reversed by hashing a dictionary of likely questions. Callers hash the
 * normalised question (normalizeQuery, as the caches key it), so a log line, the Temporal UI's summary and the query
 * log's entry for one question carry the same hash.
 */
export function redactQuery(text: string, key: string | undefined): string {
  if (key === undefined) return text;
  return `hmac:${createHmac('sha256', key).update(text).digest('hex').slice(0, 32)}`;
}
