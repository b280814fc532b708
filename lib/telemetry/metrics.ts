import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * ragline's Prometheus metrics, on one registry owned by the composition root. Recorded from activities and
 * adapters only — never from workflow code, which replays.
 */
export function createMetrics(registry: Registry = new Registry()) {
  collectDefaultMetrics({ register: registry, prefix: 'ragline_process_' });
  const registers = [registry];
  const cacheRequests = new Counter({
    name: 'rag_cache_requests_total',
    help: 'Cache lookups by level (result, semantic, embedding, chunk, llm) and outcome (hit, miss, error)',
    labelNames: ['level', 'outcome'] as const,
    registers,
  });
  return {
    registry,
    queries: new Counter({
      name: 'rag_queries_total',
      help: 'Queries answered, by whether a cache served them (cache_hit: hit | miss) and by quality tier',
      labelNames: ['cache_hit', 'quality_tier'] as const,
      registers,
    }),
    queryStarts: new Counter({
      name: 'rag_query_starts_total',
      help: 'Query workflows started by a client asking for eager start, by how the server started them (eager | normal)',
      labelNames: ['start'] as const,
      registers,
    }),
    queryDuration: new Histogram({
      name: 'rag_query_duration_seconds',
      help: 'End-to-end query workflow duration, by path (hit, miss, degraded)',
      labelNames: ['path'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    retrievalQuality: new Histogram({
      name: 'rag_retrieval_quality_score',
      help: 'Quality score of answered queries (0..1)',
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
      registers,
    }),
    answerGroundedness: new Histogram({
      name: 'rag_answer_groundedness',
      help: "Share of a generated answer's sentences supported by the chunks they cite (0..1, lexical)",
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
      registers,
    }),
    cacheHitRate: new Gauge({
      name: 'rag_cache_hit_rate',
      help: 'Result-cache hit ratio since start',
      registers,
    }),
    cacheRequests,
    cacheHitRatio: new Gauge({
      name: 'rag_cache_hit_ratio',
      help: 'Hits over lookups since start, per cache level (from rag_cache_requests_total)',
      labelNames: ['level'] as const,
      registers,
      async collect() {
        const totals = new Map<string, { hits: number; all: number }>();
        for (const { labels, value } of (await cacheRequests.get()).values) {
          const level = String(labels.level);
          const entry = totals.get(level) ?? { hits: 0, all: 0 };
          entry.all += value;
          if (labels.outcome === 'hit') entry.hits += value;
          totals.set(level, entry);
        }
        for (const [level, { hits, all }] of totals) if (all > 0) this.set({ level }, hits / all);
      },
    }),
    fallbacks: new Counter({
      name: 'rag_fallbacks_total',
      help: 'Degraded answers by fallback reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    answersByRung: new Counter({
      name: 'rag_answers_by_rung_total',
      help: 'Answers by degradation-ladder rung (full, lexical-only, stale-cache, extractive, message)',
      labelNames: ['rung'] as const,
      registers,
    }),
    activityFailures: new Counter({
      name: 'rag_activity_failures_total',
      help: 'Activity attempts that failed, by activity and failure type',
      labelNames: ['activity', 'type'] as const,
      registers,
    }),
    ingestedDocuments: new Counter({
      name: 'rag_ingested_documents_total',
      help: 'Documents processed by ingestion, by outcome (added, updated, unchanged, deleted, rejected)',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
