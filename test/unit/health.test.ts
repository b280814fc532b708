import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthStatus } from '../../lib/domain.js';
import { createMetrics } from '../../lib/telemetry/metrics.js';
import {
  MetricsPortInUseError,
  runHealthChecks,
  startTelemetryServer,
  type HealthCheck,
  type HealthReport,
  type TelemetryServer,
} from '../../lib/telemetry/telemetry-server.js';

const healthy: HealthCheck = async () => ({ ok: true, latencyMs: 1 });
const failing: HealthCheck = async () => ({ ok: false, latencyMs: 1, error: 'connection refused' });
/** Never settles on its own; resolves only when the runner aborts it, like a client honouring its signal. */
const hanging: HealthCheck = (signal) =>
  new Promise<HealthStatus>((resolve) => signal.addEventListener('abort', () => resolve({ ok: true, latencyMs: 0 })));

const servers: TelemetryServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(options: Partial<Parameters<typeof startTelemetryServer>[0]> = {}) {
  const metrics = createMetrics(new Registry());
  const server = await startTelemetryServer({ port: 0, host: '127.0.0.1', registry: metrics.registry, ...options });
  servers.push(server);
  const url = (path: string) => `http://127.0.0.1:${server.port}${path}`;
  return { metrics, server, url };
}

describe('telemetry server', () => {
  it('answers /healthz without running any check', async () => {
    let ran = false;
    const { url } = await start({ checks: { redis: async () => ((ran = true), { ok: false, latencyMs: 0 }) } });
    const response = await fetch(url('/healthz'));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true });
    expect(ran).toBe(false);
  });

  it('is ready when every check passes', async () => {
    const { url } = await start({ checks: { redis: healthy, qdrant: healthy } });
    const response = await fetch(url('/readyz'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as HealthReport;
    expect(body.ok).toBe(true);
    expect(Object.keys(body.checks).sort()).toEqual(['qdrant', 'redis']);
    expect(body.checks.redis).toMatchObject({ ok: true });
    expect(typeof body.checks.redis?.latencyMs).toBe('number');
  });

  it('is not ready when one check fails, and says which', async () => {
    const { url } = await start({ checks: { redis: healthy, qdrant: failing } });
    const response = await fetch(url('/readyz'));
    expect(response.status).toBe(503);
    const body = (await response.json()) as HealthReport;
    expect(body.ok).toBe(false);
    expect(body.checks.redis?.ok).toBe(true);
    expect(body.checks.qdrant).toMatchObject({ ok: false, error: 'connection refused' });
  });

  it('is not ready when a check times out', async () => {
    const { url } = await start({ checks: { redis: healthy, llm: hanging }, checkTimeoutMs: 50 });
    const response = await fetch(url('/readyz'));
    expect(response.status).toBe(503);
    const body = (await response.json()) as HealthReport;
    expect(body.checks.llm).toMatchObject({ ok: false, error: 'timed out after 50 ms' });
  });

  it('serves the registry on /metrics, with extra text appended', async () => {
    const { metrics, url } = await start({ extraMetrics: async () => 'temporal_worker_task_slots_available 3' });
    metrics.queries.inc({ cache_hit: 'miss', quality_tier: 'good' });
    const response = await fetch(url('/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/plain');
    const text = await response.text();
    expect(text).toContain('rag_queries_total{cache_hit="miss",quality_tier="good"} 1');
    expect(text).toContain('temporal_worker_task_slots_available 3');
  });

  it('still serves its own metrics when the extra source fails', async () => {
    const { url } = await start({
      extraMetrics: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:9465');
      },
    });
    const text = await (await fetch(url('/metrics'))).text();
    expect(text).toContain('# TYPE rag_queries_total counter');
    expect(text).toContain('# extra metrics unavailable: connect ECONNREFUSED 127.0.0.1:9465');
  });

  it('names the port and its variable when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const taken = (blocker.address() as net.AddressInfo).port;
    try {
      const attempt = startTelemetryServer({ port: taken, host: '127.0.0.1', registry: new Registry() });
      await expect(attempt).rejects.toBeInstanceOf(MetricsPortInUseError);
      await expect(attempt).rejects.toThrow(`metrics port ${taken} is already in use (RAGLINE_METRICS_PORT)`);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});

/** A GET with the Host header a browser would send for `host` (fetch may not set Host), status and body (parsed when JSON). */
function getAs(port: number, urlPath: string, host: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host } }, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => {
        const json = response.headers['content-type']?.includes('json') === true;
        resolve({ status: response.statusCode ?? 0, body: json ? JSON.parse(text) : text });
      });
    });
    request.on('error', reject);
  });
}

describe('telemetry server exposure', () => {
  const corpus = async (tenant: string) => ({ tenant, documents: 3 });

  it('listens on loopback unless told otherwise', async () => {
    const metrics = createMetrics(new Registry());
    const server = await startTelemetryServer({ port: 0, registry: metrics.registry });
    servers.push(server);
    const others = Object.values(os.networkInterfaces())
      .flat()
      .filter((i) => i && i.family === 'IPv4' && !i.internal);
    expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    for (const other of others) {
      await expect(fetch(`http://${other!.address}:${server.port}/healthz`)).rejects.toThrow();
    }
  });

  it('refuses a request addressed to another name, as a DNS-rebinding page sends it', async () => {
    const { server } = await start({ corpus });
    expect((await getAs(server.port, '/corpus?tenant=acme', 'attacker.example:9464')).status).toBe(403);
    expect((await getAs(server.port, '/readyz', 'attacker.example')).status).toBe(403);
    expect(await getAs(server.port, '/corpus?tenant=acme', `localhost:${server.port}`)).toEqual({
      status: 200,
      body: { tenant: 'acme', documents: 3 },
    });
    expect((await getAs(server.port, '/healthz', `127.0.0.1:${server.port}`)).status).toBe(200);
    expect((await getAs(server.port, '/healthz', `[::1]:${server.port}`)).status).toBe(200);
  });

  it('opened beyond loopback, serves no per-tenant data and no check details', async () => {
    const { server } = await start({
      host: '0.0.0.0',
      corpus,
      checks: { redis: failing, store: async () => ({ ok: true, latencyMs: 1, detail: 'collection c at 10.0.0.7' }) },
    });
    expect((await getAs(server.port, '/corpus?tenant=acme', 'worker-3.internal:9464')).status).toBe(404);
    const ready = await getAs(server.port, '/readyz', 'worker-3.internal:9464');
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body)).not.toMatch(/10\.0\.0\.7|connection refused/);
    expect(ready.body).toMatchObject({
      ok: false,
      checks: { redis: { ok: false, error: 'failing' }, store: { ok: true } },
    });
    expect((await getAs(server.port, '/metrics', 'worker-3.internal:9464')).status).toBe(200);
  });
});

describe('runHealthChecks', () => {
  it('turns a thrown error into a failed check without failing the others', async () => {
    const report = await runHealthChecks({
      ok: healthy,
      broken: () => {
        throw new Error('boom');
      },
    });
    expect(report.ok).toBe(false);
    expect(report.checks.ok?.ok).toBe(true);
    expect(report.checks.broken).toMatchObject({ ok: false, error: 'boom' });
  });

  it('is ok with no checks at all', async () => {
    expect(await runHealthChecks({}, 10)).toEqual({ ok: true, checks: {} });
  });
});
