import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createCacheMetrics } from '../../lib/cache/cache-metrics.js';
import { createEvalMetrics } from '../../lib/eval/eval-metrics.js';
import { createLlmMetrics } from '../../lib/generation/llm-metrics.js';
import { createMetrics } from '../../lib/telemetry/metrics.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');

/**
 * Metrics a panel or alert may query: what the metric factories register on a registry, plus every `rag_*` name in
 * any module that imports prom-client, so a module added later counts without editing this test, while a name that
 * no code registers fails the tests below.
 */
async function registeredMetricNames(): Promise<Set<string>> {
  const registry = new Registry();
  createMetrics(registry);
  createCacheMetrics(registry);
  createLlmMetrics(registry);
  createEvalMetrics(registry);
  const names = new Set((await registry.getMetricsAsJSON()).map((metric) => metric.name));
  for (const file of sourceFiles(['lib', 'workers', 'activities', 'client'])) {
    const text = read(file);
    if (!/from 'prom-client'/.test(text)) continue;
    for (const match of text.matchAll(/['"`](rag_[a-z0-9_]+)['"`]/g)) names.add(match[1]!);
  }
  return names;
}

function sourceFiles(dirs: string[]): string[] {
  return dirs.flatMap((dir) =>
    fs
      .readdirSync(path.join(root, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts'))
      .map((file) => path.join(dir, file)),
  );
}

/** The names an expression queries that nothing registers. */
function unregistered(expr: string, registered: Set<string>): string[] {
  return referencedMetrics(expr).filter((name) => !registered.has(name));
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
  it('queries only metrics ragline registers, so a rename breaks this test and not a panel', async () => {
    const registered = await registeredMetricNames();
    for (const panel of dataPanels) {
      for (const target of panel.targets ?? []) expect(unregistered(target.expr, registered), panel.title).toEqual([]);
    }
  });

  it('would fail for a panel whose metric nothing registers', async () => {
    const registered = await registeredMetricNames();
    expect(unregistered('sum(rate(rag_never_registered_total[5m]))', registered)).toEqual([
      'rag_never_registered_total',
    ]);
    expect(
      unregistered('histogram_quantile(0.95, sum by (le) (rate(rag_query_duration_seconds_bucket[5m])))', registered),
    ).toEqual([]);
    // The evaluation metrics are checked like any other: registered by lib/eval, not whitelisted.
    expect(registered).toContain('rag_eval_ndcg10');
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
    const registered = await registeredMetricNames();
    const rules = parse(read('ops/prometheus/alerts.yml')) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    for (const rule of rules.groups.flatMap((group) => group.rules)) {
      expect(unregistered(rule.expr, registered), rule.alert).toEqual([]);
    }
  });
});
