import Fastify from 'fastify';
import type { Registry } from 'prom-client';
import type { HealthStatus } from '../domain.js';
import type { Logger } from './logger.js';
import { isLoopbackHostHeader, isLoopbackName } from '../loopback.js';
import { TENANT_PATTERN } from '../tenant.js';

/**
 * One readiness probe. It receives a signal that aborts when its time is up, so a check holding a socket can
 * let it go instead of finishing in the background.
 */
export type HealthCheck = (signal: AbortSignal) => Promise<HealthStatus>;

export interface CheckResult {
  ok: boolean;
  /** Wall time measured here, not reported by the check, so a hung check shows its real cost. */
  latencyMs: number;
  detail?: string;
  error?: string;
}

export interface HealthReport {
  ok: boolean;
  checks: Record<string, CheckResult>;
}

/** Per-check timeout of /readyz. @default 2000 */
export const DEFAULT_CHECK_TIMEOUT_MS = 2000;

/**
 * Runs every check in parallel, each bounded by `timeoutMs`. Never throws: a check that throws or times out is
 * reported as not ok, so one broken dependency cannot hide the state of the others. Shared by /readyz and
 * `ragline status`.
 */
export async function runHealthChecks(
  checks: Record<string, HealthCheck>,
  timeoutMs: number = DEFAULT_CHECK_TIMEOUT_MS,
): Promise<HealthReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, CheckResult]> => [
      name,
      await runOneCheck(check, timeoutMs),
    ]),
  );
  const results = Object.fromEntries(entries);
  return { ok: entries.every(([, result]) => result.ok), checks: results };
}

async function runOneCheck(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  const controller = new AbortController();
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new Error(`timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const elapsed = () => Math.round(performance.now() - started);
  try {
    // The check runs inside an async wrapper so a synchronous throw is reported like a rejection.
    const status = await Promise.race([(async () => check(controller.signal))(), timedOut]);
    const result: CheckResult = { ok: status.ok === true, latencyMs: elapsed() };
    if (status.detail !== undefined) result.detail = status.detail;
    if (status.error !== undefined) result.error = status.error;
    else if (!result.ok) result.error = 'check reported not ok';
    return result;
  } catch (err) {
    return { ok: false, latencyMs: elapsed(), error: err instanceof Error ? err.message : String(err) };
  } finally {
    clearTimeout(timer);
  }
}

function withoutDetails(checks: Record<string, CheckResult>): Record<string, CheckResult> {
  return Object.fromEntries(
    Object.entries(checks).map(([name, { ok, latencyMs }]) => [
      name,
      ok ? { ok, latencyMs } : { ok, latencyMs, error: 'failing' },
    ]),
  );
}

export class MetricsPortInUseError extends Error {
  override readonly name = 'MetricsPortInUseError';
  constructor(
    readonly port: number,
    readonly variable: string,
  ) {
    super(`metrics port ${port} is already in use (${variable})`);
  }
}

export interface TelemetryServerOptions {
  /** Port to listen on; 0 picks a free one (tests). Usually `config.RAGLINE_METRICS_PORT`. */
  port: number;
  /**
   * Address to listen on. Loopback by default: the readiness report names dependencies, and the corpus route
   * answers per tenant. Set `0.0.0.0` (RAGLINE_METRICS_HOST) for a Prometheus on another host or container; the
   * corpus route is then not served. @default 127.0.0.1
   */
  host?: string;
  /** ragline's own registry (`createMetrics().registry`). */
  registry: Registry;
  /** More prom-client registries to expose on the same page; their metric names must not collide. */
  extraRegistries?: Registry[];
  /**
   * Text in Prometheus exposition format appended to the page, e.g. {@link fetchMetricsText} over the
   * Temporal SDK's own Prometheus endpoint, so one scrape target covers the whole worker.
   */
  extraMetrics?: () => Promise<string>;
  /**
   * Corpus state of a tenant for `GET /corpus?tenant=`, read from the worker's own store: how `ragline status`
   * reaches it without starting a workflow (which would fill the Temporal UI's list with one per call). Served
   * only on a loopback listener: per-tenant data never leaves the machine through this port.
   */
  corpus?: (tenant: string) => Promise<unknown>;
  /** Readiness checks of /readyz, by name. */
  checks?: Record<string, HealthCheck>;
  /** @default 2000 */
  checkTimeoutMs?: number;
  /** Name of the setting the port came from, quoted when the port is taken. @default RAGLINE_METRICS_PORT */
  portVariable?: string;
  logger?: Logger;
}

export interface TelemetryServer {
  /** The port actually bound (differs from the option when it was 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves /metrics, /healthz (liveness: the event loop answers) and /readyz (readiness: every dependency check
 * passes). Liveness deliberately runs no checks, so an orchestrator does not restart a healthy process because
 * Redis blinked.
 */
export async function startTelemetryServer(options: TelemetryServerOptions): Promise<TelemetryServer> {
  const {
    port,
    host = '127.0.0.1',
    registry,
    extraRegistries = [],
    extraMetrics,
    checks = {},
    corpus,
    checkTimeoutMs = DEFAULT_CHECK_TIMEOUT_MS,
    portVariable = 'RAGLINE_METRICS_PORT',
    logger,
  } = options;
  // Fastify's own request log would add a line per scrape; errors still reach our logger below.
  const app = Fastify({ logger: false });
  const startedAt = Date.now();
  const loopbackOnly = isLoopbackName(host);
  if (loopbackOnly) {
    // Bound to this machine: a browser page reaching it through DNS rebinding sends its own name as the Host.
    app.addHook('onRequest', async (request, reply) => {
      if (!isLoopbackHostHeader(request.headers.host)) {
        return reply.code(403).send({ error: 'this server answers requests addressed to this machine only' });
      }
    });
  }

  app.get('/metrics', async (_request, reply) => {
    const pages = await Promise.all([registry, ...extraRegistries].map((r) => r.metrics()));
    if (extraMetrics) {
      try {
        pages.push(await extraMetrics());
      } catch (err) {
        // Our own metrics stay scrapable when the extra source is down; the comment line tells an operator why.
        const message = err instanceof Error ? err.message : String(err);
        logger?.warn({ err: message }, 'extra metrics unavailable');
        pages.push(`# extra metrics unavailable: ${message.replace(/\s+/g, ' ')}\n`);
      }
    }
    return reply
      .type(registry.contentType)
      .send(pages.map((page) => (page.endsWith('\n') || page === '' ? page : `${page}\n`)).join(''));
  });

  app.get('/healthz', async () => ({ ok: true, uptimeSeconds: Math.round((Date.now() - startedAt) / 1000) }));

  app.get('/readyz', async (_request, reply) => {
    const report = await runHealthChecks(checks, checkTimeoutMs);
    if (!report.ok) logger?.warn({ checks: report.checks }, 'readiness check failed');
    // Beyond this machine the report says which checks pass, not the details and errors that name internal hosts
    // (they are in the log line above).
    const shown = loopbackOnly ? report : { ok: report.ok, checks: withoutDetails(report.checks) };
    return reply.code(report.ok ? 200 : 503).send(shown);
  });

  if (corpus && loopbackOnly) {
    app.get<{ Querystring: { tenant?: string } }>('/corpus', async (request, reply) => {
      const tenant = request.query.tenant ?? 'default';
      if (!TENANT_PATTERN.test(tenant)) return reply.code(400).send({ error: 'invalid tenant' });
      return corpus(tenant);
    });
  }

  try {
    await app.listen({ port, host });
  } catch (err) {
    await app.close().catch(() => undefined);
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new MetricsPortInUseError(port, portVariable);
    throw err;
  }
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  logger?.info({ port: boundPort, host }, 'telemetry server listening');
  return { port: boundPort, close: () => app.close() };
}

/**
 * Reads another Prometheus endpoint for {@link TelemetryServerOptions.extraMetrics}; typically the Temporal
 * SDK's, which the worker binds on localhost with `Runtime.install({ telemetryOptions: { metrics: { prometheus:
 * { bindAddress } } } })`.
 */
export function fetchMetricsText(url: string, timeoutMs = 2000): () => Promise<string> {
  return async () => {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`${url} answered ${response.status}`);
    return response.text();
  };
}
