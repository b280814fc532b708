import type { Registry } from 'prom-client';
import { Counter } from 'prom-client';

/**
 * The cache's own metrics, beside the shared `rag_cache_requests_total` owned by lib/telemetry/metrics.ts.
 * Registering twice on one registry returns the metrics already there, so several caches can share it.
 */
export function createCacheMetrics(registry: Registry) {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
    (registry.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    semanticHits: counter('rag_semantic_cache_hits_total', 'Answers served from a near-duplicate question', []),
    semanticRefusals: counter(
      'rag_semantic_cache_refusals_total',
      'Near-duplicates above the similarity threshold that the guard refused, by reason',
      ['reason'] as const,
    ),
    backendErrors: counter(
      'rag_cache_backend_errors_total',
      'Failed cache-store commands (get, set, delete, invalidate, lock), each absorbed without failing the caller',
      ['operation'] as const,
    ),
    stampedeWaits: counter(
      'rag_cache_stampede_total',
      'Misses handled by stampede protection, by outcome (shared, waited, computed, timeout)',
      ['outcome'] as const,
    ),
  };
}

export type CacheMetrics = ReturnType<typeof createCacheMetrics>;
