import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime as TemporalRuntime, type Worker } from '@temporalio/worker';
import type { Config } from '../lib/config.js';
import { ensureTemporalCli, startDevServer, type DevServerHandle } from './dev-server.js';
import {
  fetchMetricsText,
  MetricsPortInUseError,
  startTelemetryServer,
  type TelemetryServer,
} from '../lib/telemetry/telemetry-server.js';
import { startTracing, temporalWorkerTracing, type Tracing } from '../lib/telemetry/tracing.js';
import { createLogger, temporalLogger } from '../lib/telemetry/logger.js';
import { temporalTarget } from '../lib/temporal/target.js';
import { breakersHealth } from '../lib/resilience/breakers.js';
import { startPendingReindexes } from './reindex-startup.js';
import { createRuntime, createWorker, type Runtime } from './runtime.js';

export interface WorkerProcess {
  runtime: Runtime;
  worker: Worker;
  /** The worker's connection; a Client over it can start workflows eagerly on this worker. */
  connection: NativeConnection;
  server?: DevServerHandle;
  telemetry: TelemetryServer;
  address: string;
  namespace: string;
  uiUrl?: string;
  /** Resolves when the worker stops. */
  running: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a worker process: tracing first (so every later client and worker is instrumented), then the embedded
 * Temporal dev server unless one is configured, the worker, and the telemetry server.
 */
export async function startWorkerProcess(
  config: Config,
  options: { embeddedServer?: boolean; log?: (line: string) => void } = {},
): Promise<WorkerProcess> {
  const log = options.log ?? ((line: string) => console.error(line));
  const tracing: Tracing = startTracing({
    serviceName: config.OTEL_SERVICE_NAME,
    otlpEndpoint: config.OTEL_EXPORTER_OTLP_ENDPOINT,
  });
  // Temporal's own SDK metrics are served on loopback and merged into our /metrics, so one scrape gets both.
  const sdkMetricsAddress = `127.0.0.1:${config.RAGLINE_METRICS_PORT === 0 ? 0 : config.RAGLINE_METRICS_PORT + 1}`;
  const logger = createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT });
  try {
    TemporalRuntime.install({
      logger: temporalLogger(logger),
      telemetryOptions:
        config.RAGLINE_METRICS_PORT !== 0 ? { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } } : undefined,
    });
  } catch (error) {
    // The SDK's own message names neither the port nor the setting that chose it.
    if (config.RAGLINE_METRICS_PORT !== 0 && /address already in use/i.test(String(error))) {
      throw new MetricsPortInUseError(
        config.RAGLINE_METRICS_PORT + 1,
        "RAGLINE_METRICS_PORT + 1, where the Temporal SDK's metrics are served",
      );
    }
    throw error;
  }

  const target = temporalTarget(config);
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    const runtime = await createRuntime(config, { logger });
    cleanups.unshift(() => runtime.close());
    const { deps } = runtime;
    // The telemetry port is claimed before anything slow starts, so a clash fails in a second, naming the port.
    const temporalHealth: { client?: Connection } = {};
    const telemetry = await startTelemetryServer({
      port: config.RAGLINE_METRICS_PORT,
      host: config.RAGLINE_METRICS_HOST,
      registry: deps.metrics.registry,
      extraMetrics:
        config.RAGLINE_METRICS_PORT !== 0 ? fetchMetricsText(`http://${sdkMetricsAddress}/metrics`) : undefined,
      logger: runtime.logger,
      corpus: async (tenant) => ({ tenant, store: deps.store.kind, ...(await deps.store.stats(tenant)) }),
      checks: {
        temporal: async () => {
          const started = performance.now();
          if (!temporalHealth.client) return { ok: false, latencyMs: 0, error: 'not connected to Temporal yet' };
          await temporalHealth.client.workflowService.getSystemInfo({});
          return { ok: true, latencyMs: Math.round(performance.now() - started) };
        },
        cache: () => deps.cache.health(),
        store: () => deps.store.health(),
        ...(deps.generator !== deps.extractive ? { llm: () => deps.generator.health() } : {}),
        ...(runtime.breakers ? { breakers: breakersHealth(runtime.breakers) } : {}),
      },
    });
    cleanups.unshift(() => telemetry.close());

    let server: DevServerHandle | undefined;
    if (target.embedded && options.embeddedServer !== false) {
      server = await startDevServer({
        cliPath: ensureTemporalCli(config.TEMPORAL_CLI_PATH, log),
        dbFile: path.join(config.RAGLINE_DATA_DIR, 'temporal.sqlite'),
        port: config.TEMPORAL_PORT,
        uiPort: config.TEMPORAL_UI_PORT,
        namespace: config.TEMPORAL_NAMESPACE,
      });
      const started = server;
      cleanups.push(() => started.stop());
    }
    const { tls, apiKey, metadata } = target.connectionOptions ?? {};
    const connection = await NativeConnection.connect({
      address: target.address,
      tls,
      apiKey: typeof apiKey === 'string' ? apiKey : undefined,
      metadata,
    });
    cleanups.unshift(() => connection.close());
    const client = await Connection.connect({ ...target.connectionOptions, connectTimeout: 2000 });
    temporalHealth.client = client;
    cleanups.unshift(() => client.close());
    const worker = await createWorker({
      connection,
      namespace: target.namespace,
      taskQueue: config.RAGLINE_TASK_QUEUE,
      runtime,
      tracing: temporalWorkerTracing(tracing),
    });
    const running = worker.run();
    if (config.RAGLINE_REINDEX_AUTO) {
      // In the background: a worker serves queries (lexically for those tenants) while reindexes are started.
      startPendingReindexes({
        client: new Client({ connection: client, namespace: target.namespace }),
        taskQueue: config.RAGLINE_TASK_QUEUE,
        store: deps.reindex?.store,
        batchChunks: config.RAGLINE_REINDEX_BATCH_CHUNKS,
        heartbeatTimeoutSeconds: config.RAGLINE_REINDEX_HEARTBEAT_SECONDS,
        logger: runtime.logger,
      }).catch((error: unknown) =>
        runtime.logger.warn(
          { err: error },
          'could not start re-embedding at start-up; run `ragline reindex --embeddings`',
        ),
      );
    }
    let stopping: Promise<void> | undefined;
    return {
      runtime,
      worker,
      connection,
      server,
      telemetry,
      address: target.address,
      namespace: target.namespace,
      uiUrl: server?.uiUrl,
      running,
      stop() {
        stopping ??= (async () => {
          if (worker.getState() === 'RUNNING') worker.shutdown();
          await running.catch(() => undefined);
          for (const cleanup of cleanups) await cleanup().catch(() => undefined);
          await tracing.shutdown();
        })();
        return stopping;
      },
    };
  } catch (error) {
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    await tracing.shutdown();
    throw error;
  }
}
