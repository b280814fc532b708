import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Evaluation figures as Prometheus series, labelled by tenant and evaluation set. The gauges hold the last batch;
 * `rag_eval_ndcg10` and `rag_eval_recall10` are what the `ragline-evaluation` alert rules and the dashboard read.
 */
export function createEvalMetrics(registry: Registry) {
  const registers = [registry];
  const gauge = (name: string, help: string) =>
    new Gauge({ name, help, labelNames: ['tenant', 'eval_set'] as const, registers });
  return {
    quality: gauge('rag_eval_quality', 'Quality score (0..1) of the last evaluation batch'),
    ndcg10: gauge('rag_eval_ndcg10', 'Mean nDCG@10 of the last evaluation batch'),
    recall10: gauge('rag_eval_recall10', 'Mean recall@10 of the last evaluation batch'),
    mrr10: gauge('rag_eval_mrr10', 'Mean MRR@10 of the last evaluation batch'),
    precisionAtK: gauge('rag_eval_precision_at_k', 'Mean precision@k of the last evaluation batch'),
    recallAtK: gauge('rag_eval_recall_at_k', 'Mean recall@k of the last evaluation batch'),
    f1AtK: gauge('rag_eval_f1_at_k', 'Mean F1@k of the last evaluation batch'),
    citedRelevantShare: gauge(
      'rag_eval_cited_relevant_share',
      'Share of cited documents that are relevant, last evaluation batch',
    ),
    degradedShare: gauge('rag_eval_degraded_share', 'Share of degraded or failed answers, last evaluation batch'),
    latencyP50: gauge('rag_eval_latency_p50_seconds', 'Median query latency of the last evaluation batch'),
    latencyP95: gauge('rag_eval_latency_p95_seconds', 'p95 query latency of the last evaluation batch'),
    baselineQuality: gauge('rag_eval_baseline_quality', 'Mean quality of the rolling evaluation baseline'),
    batches: new Counter({
      name: 'rag_eval_batches_total',
      help: 'Evaluation batches recorded',
      labelNames: ['tenant', 'eval_set'] as const,
      registers,
    }),
    questions: new Counter({
      name: 'rag_eval_questions_total',
      help: 'Evaluation questions run, by outcome (ok, degraded, error)',
      labelNames: ['tenant', 'eval_set', 'outcome'] as const,
      registers,
    }),
    alertFiring: new Gauge({
      name: 'rag_eval_alert_firing',
      help: '1 while an evaluation alert (quality, latency) fires, else 0',
      labelNames: ['tenant', 'eval_set', 'alert'] as const,
      registers,
    }),
    alerts: new Counter({
      name: 'rag_eval_alerts_total',
      help: 'Evaluation alert transitions, by alert and state (firing, resolved)',
      labelNames: ['tenant', 'eval_set', 'alert', 'state'] as const,
      registers,
    }),
  };
}

export type EvalMetrics = ReturnType<typeof createEvalMetrics>;
