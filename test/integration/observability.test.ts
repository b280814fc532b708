import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { AnswerGenerator } from '../../lib/domain.js';
import { startTelemetryServer, type HealthReport, type TelemetryServer } from '../../lib/telemetry/telemetry-server.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { TestRedis } from '../support/redis.js';
import { startTestTemporal } from '../support/temporal.js';

/** One sample of a Prometheus text page. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parseMetrics(page: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of page.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[key!] = value!;
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Sum of every series of `name` whose labels include `labels`; 0 when there is none (the series is absent). */
function total(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

async function scrape(telemetry: TelemetryServer): Promise<Sample[]> {
  const response = await fetch(`http://127.0.0.1:${telemetry.port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  return parseMetrics(await response.text());
}

async function readyz(telemetry: TelemetryServer): Promise<{ status: number; body: HealthReport }> {
  const response = await fetch(`http://127.0.0.1:${telemetry.port}/readyz`);
  return { status: response.status, body: (await response.json()) as HealthReport };
}

async function healthz(telemetry: TelemetryServer): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${telemetry.port}/healthz`);
  await response.body?.cancel();
  return response.status;
}

/** The telemetry server as workers/main.ts wires it, minus the Temporal check (the test env has no health client). */
function telemetryFor(ragline: TestRagline): Promise<TelemetryServer> {
  const { deps } = ragline.runtime;
  return startTelemetryServer({
    port: 0,
    host: '127.0.0.1',
    registry: deps.metrics.registry,
    checks: { cache: () => deps.cache.health(), store: () => deps.store.health() },
  });
}

const failingGenerator: AnswerGenerator = {
  model: 'broken-llm',
  async generate() {
    throw new Error('upstream returned 503');
  },
  async health() {
    return { ok: false, latencyMs: 0, error: 'down' };
  },
};

describe('observability over real HTTP', () => {
  let env: TestWorkflowEnvironment;
  const cleanups: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await env?.teardown();
  });

  async function started(options: Parameters<typeof startRagline>[0] = {}) {
    const ragline = await startRagline({ env, ...options });
    cleanups.push(() => ragline.stop());
    const telemetry = await telemetryFor(ragline);
    cleanups.push(() => telemetry.close());
    await ragline.ingest([SAMPLE_CORPUS]);
    return { ragline, telemetry };
  }

  const ask = (ragline: TestRagline, query: string) =>
    env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${randomUUID()}`,
      args: [{ query }],
    });

  it('counts a miss and then a hit in /metrics, from the workflow sink and the result cache', async () => {
    const { ragline, telemetry } = await started();
    const queries = (s: Sample[], hit: boolean) => total(s, 'rag_queries_total', { cache_hit: hit ? 'hit' : 'miss' });
    const durations = (s: Sample[], path: string) => total(s, 'rag_query_duration_seconds_count', { path });
    const resultLookups = (s: Sample[], outcome: string) =>
      total(s, 'rag_cache_requests_total', { level: 'result', outcome });

    const before = await scrape(telemetry);
    expect(queries(before, true)).toBe(0);
    expect(queries(before, false)).toBe(0);
    expect(durations(before, 'hit')).toBe(0);
    expect(resultLookups(before, 'hit')).toBe(0);

    const first = await ask(ragline, 'How do I reset my password?');
    expect(first.cache.result).toBe('miss');
    // The sink runs after the workflow task that completed the workflow, so the counter may trail the result.
    const afterMiss = await vi.waitFor(
      async () => {
        const samples = await scrape(telemetry);
        expect(queries(samples, false)).toBe(1);
        return samples;
      },
      { timeout: 5000, interval: 50 },
    );
    expect(queries(afterMiss, true)).toBe(0);
    expect(durations(afterMiss, 'miss')).toBe(1);
    expect(durations(afterMiss, 'hit')).toBe(0);
    expect(resultLookups(afterMiss, 'miss')).toBe(1);
    expect(resultLookups(afterMiss, 'hit')).toBe(0);

    const second = await ask(ragline, 'how do I reset my password');
    expect(second.cache.result).toBe('hit');
    const afterHit = await vi.waitFor(
      async () => {
        const samples = await scrape(telemetry);
        expect(queries(samples, true)).toBe(1);
        return samples;
      },
      { timeout: 5000, interval: 50 },
    );
    expect(queries(afterHit, false)).toBe(1);
    expect(durations(afterHit, 'hit')).toBe(1);
    expect(durations(afterHit, 'miss')).toBe(1);
    expect(total(afterHit, 'rag_query_duration_seconds_sum', { path: 'hit' })).toBeGreaterThan(0);
    expect(resultLookups(afterHit, 'hit')).toBe(1);
    // The series carries the answer's quality tier, the same one the workflow reported.
    expect(total(afterHit, 'rag_queries_total', { cache_hit: 'hit', quality_tier: second.qualityTier })).toBe(1);
    expect(total(afterHit, 'rag_cache_hit_rate')).toBe(0.5);
    expect(total(afterHit, 'rag_fallbacks_total')).toBe(0);
  });

  it('counts a generation fallback on the registry of the worker that degraded', async () => {
    const { ragline, telemetry } = await started({ overrides: { generator: failingGenerator } });
    const result = await ask(ragline, 'How do I reset my password?');
    expect(result.fallbackReason).toBe('generation-failed');

    const samples = await vi.waitFor(
      async () => {
        const s = await scrape(telemetry);
        expect(total(s, 'rag_fallbacks_total', { reason: 'generation-failed' })).toBe(1);
        return s;
      },
      { timeout: 5000, interval: 50 },
    );
    expect(total(samples, 'rag_fallbacks_total')).toBe(1);
    expect(total(samples, 'rag_query_duration_seconds_count', { path: 'degraded' })).toBe(1);
    expect(total(samples, 'rag_queries_total')).toBe(1);
  });

  it('reports Redis going away and coming back on /readyz, while /healthz stays up', async () => {
    const redis = await TestRedis.start();
    cleanups.push(() => redis.stop());
    const { telemetry } = await started({
      config: { REDIS_URL: redis.url, REDIS_KEY_PREFIX: `t${randomUUID().slice(0, 8)}:` },
    });

    const up = await readyz(telemetry);
    expect(up.status).toBe(200);
    expect(up.body.ok).toBe(true);
    expect(up.body.checks.cache?.ok).toBe(true);
    expect(up.body.checks.store?.ok).toBe(true);
    expect(await healthz(telemetry)).toBe(200);

    await redis.stop();
    const down = await vi.waitFor(
      async () => {
        const report = await readyz(telemetry);
        expect(report.status).toBe(503);
        return report;
      },
      { timeout: 10_000, interval: 100 },
    );
    expect(down.body.ok).toBe(false);
    expect(down.body.checks.cache?.ok).toBe(false);
    expect(down.body.checks.cache?.error).toBeTruthy();
    // One broken dependency does not hide the others' state.
    expect(down.body.checks.store?.ok).toBe(true);
    // Liveness runs no checks: a Redis outage must not get a healthy process restarted.
    expect(await healthz(telemetry)).toBe(200);

    await redis.restart();
    const back = await vi.waitFor(
      async () => {
        const report = await readyz(telemetry);
        expect(report.status).toBe(200);
        return report;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(back.body.checks.cache?.ok).toBe(true);
    expect(await healthz(telemetry)).toBe(200);
  });
});
