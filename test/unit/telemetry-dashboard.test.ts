import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createEvalMetrics } from '../../lib/eval/eval-metrics.js';
import { createMetrics } from '../../lib/telemetry/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

/** Metrics recorded outside lib/telemetry/metrics.ts and lib/eval/eval-metrics.ts (LLM adapter, semantic cache). */
const RECORDED_ELSEWHERE = [
  'rag_semantic_cache_refusals_total',
  'rag_llm_tokens_total',
  'rag_llm_cost_usd_total',
  'rag_llm_requests_total',
];

async function knownMetricNames(): Promise<Set<string>> {
  const metrics = createMetrics(new Registry());
  createEvalMetrics(metrics.registry);
  const names = (await metrics.registry.getMetricsAsJSON()).map((metric) => metric.name);
  return new Set([...names, ...RECORDED_ELSEWHERE]);
}

/** rag_* series names in PromQL text, with histogram suffixes folded into their metric. */
function referencedMetrics(promql: string): string[] {
  return [...promql.matchAll(/\brag_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

interface Panel {
  type: string;
  title: string;
  datasource?: { uid: string };
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(read('ops/grafana/dashboards/ragline-overview.json')) as { uid: string; panels: Panel[] };
const dataPanels = dashboard.panels.filter((panel) => panel.type !== 'row');

describe('Grafana dashboard', () => {
  it('queries only metrics ragline records, so a rename breaks this test and not a panel', async () => {
    const known = await knownMetricNames();
    for (const panel of dataPanels) {
      for (const target of panel.targets ?? []) {
        for (const name of referencedMetrics(target.expr)) expect(known, `${panel.title}: ${name}`).toContain(name);
      }
    }
  });

  it('uses the provisioned Prometheus data source', () => {
    const provisioning = parse(read('ops/grafana/provisioning/datasources/datasources.yml')) as {
      datasources: { uid: string; type: string }[];
    };
    const prometheusUid = provisioning.datasources.find((source) => source.type === 'prometheus')?.uid;
    for (const panel of dataPanels) expect(panel.datasource?.uid, panel.title).toBe(prometheusUid);
  });

  it('covers traffic, latency percentiles, caches, fallbacks, quality, LLM usage and evaluation', () => {
    const queries = dataPanels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)).join('\n');
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(queries).toContain(`histogram_quantile(${quantile}, sum by (path, le)`);
    }
    for (const fragment of [
      'rate(rag_queries_total',
      'sum by (level) (rate(rag_cache_requests_total{outcome="hit"}',
      'sum by (reason) (rate(rag_fallbacks_total',
      'sum by (quality_tier)',
      'rag_llm_tokens_total',
      'rag_llm_cost_usd_total',
      'rag_eval_ndcg10',
      'rag_eval_recall10',
      'rag_eval_quality',
      'rag_eval_latency_p95_seconds',
      'rag_eval_alert_firing',
    ]) {
      expect(queries).toContain(fragment);
    }
  });
});

describe('alert rules', () => {
  it('reference only metrics ragline records', async () => {
    const known = await knownMetricNames();
    const rules = parse(read('ops/prometheus/alerts.yml')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      for (const name of referencedMetrics(rule.expr)) expect(known, `${rule.alert}: ${name}`).toContain(name);
    }
  });
});
