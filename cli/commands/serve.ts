import path from 'node:path';
import { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { redactionKey, type Config } from '../../lib/config.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { startTelemetryServer } from '../../lib/telemetry/telemetry-server.js';
import { createMetrics } from '../../lib/telemetry/metrics.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { createApiToken, SCOPES, type Scope } from '../../lib/api-tokens.js';
import { temporalTarget } from '../../lib/temporal/target.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { improvementSettings } from '../../client/improvement-client.js';
import type { CliContext } from '../context.js';
import { printIngest, withProgressBar } from '../output.js';

/** `ragline up`, `setup`, `worker`, `serve` and `token create`: the processes of the service and its API's tokens. */
export function registerServeCommands(program: Command, context: CliContext): void {
  program
    .command('up')
    .description('start the Temporal dev server (unless one is configured), the worker, and ingest the sample corpus')
    .option('--no-sample', 'do not ingest the sample corpus into an empty index')
    .option('--api', 'serve the HTTP API too, on RAGLINE_HTTP_PORT')
    .action(async (options: { sample: boolean; api?: boolean }) => {
      const config = context.loadConfig();
      const { startWorkerProcess } = await import('../../workers/main.js');
      const target = temporalTarget(config);
      console.error(
        target.embedded ? 'starting the embedded Temporal dev server…' : `using Temporal at ${target.address}`,
      );
      const proc = await startWorkerProcess(config);
      let api: { url: string; close: () => Promise<void> } | undefined;
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) return;
        stopping = true;
        console.error(`\n${signal}: stopping the worker${proc.server ? ' and the dev server' : ''}…`);
        await api?.close().catch(() => undefined);
        await proc.stop();
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));

      // Streamed answers reach the API here from this process's worker, through Redis or in-process.
      const client = await RaglineClient.connect(config, { tokens: proc.runtime.deps.tokens });
      // Read from the worker in this process: no workflow per call in the Temporal UI's list.
      const stats = await proc.runtime.deps.store.stats(config.RAGLINE_DEFAULT_TENANT);
      if (options.api) {
        // A port clash must not leave the embedded dev server running without its parent.
        api = await startApi(config, client).catch(async (error: unknown) => {
          await proc.stop();
          throw error;
        });
      }
      if (options.sample && stats.documents === 0) {
        const sample = path.resolve(config.RAGLINE_SAMPLE_CORPUS);
        console.error(`the index is empty: ingesting the sample corpus from ${sample}`);
        printIngest(await withProgressBar((onProgress) => client.ingest([sample], { onProgress })));
      } else {
        console.error(`corpus: ${stats.documents} documents, ${stats.chunks} chunks, version ${stats.corpusVersion}`);
      }
      if (config.RAGLINE_IMPROVE_INTERVAL_SECONDS > 0) {
        await client.improvement.ensure(config.RAGLINE_DEFAULT_TENANT, improvementSettings(config));
      }
      console.log(
        [
          '',
          `ragline is up — Temporal at ${proc.address} (namespace ${proc.namespace}), task queue ${config.RAGLINE_TASK_QUEUE}`,
          proc.uiUrl ? `  Temporal Web UI:   ${proc.uiUrl}` : undefined,
          `  metrics and health: http://127.0.0.1:${proc.telemetry.port}/metrics  /healthz  /readyz`,
          api ? `  HTTP API:          ${api.url}  (OpenAPI at ${api.url}/openapi.json)` : undefined,
          `  ask a question:    npx ragline ask "How do I reset my password?"`,
          'Press Ctrl-C to stop.',
        ]
          .filter(Boolean)
          .join('\n'),
      );
      await proc.running;
    });

  program
    .command('setup')
    .description('find the temporal CLI (TEMPORAL_CLI_PATH, PATH, .tools/bin) or build it with go install')
    .action(async () => {
      const { ensureTemporalCli } = await import('../../workers/dev-server.js');
      console.error(`temporal CLI: ${ensureTemporalCli(context.loadConfig().TEMPORAL_CLI_PATH)}`);
    });

  program
    .command('worker')
    .description('run only the worker, against the configured Temporal (TEMPORAL_ADDRESS or an envconfig profile)')
    .action(async () => {
      const config = context.loadConfig();
      const { startWorkerProcess } = await import('../../workers/main.js');
      const proc = await startWorkerProcess(config, { embeddedServer: false });
      const stop = () => void proc.stop().then(() => process.exit(0));
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      console.error(`worker polling ${config.RAGLINE_TASK_QUEUE} at ${proc.address}`);
      await proc.running;
    });

  program
    .command('serve')
    .description('serve the HTTP API (see /openapi.json) on RAGLINE_HTTP_PORT')
    .option('--host <host>', 'address to listen on (default 0.0.0.0 with tokens, 127.0.0.1 without)')
    .option('--worker', 'host a worker in this process too and start query workflows on it eagerly (lower latency)')
    .action(async (options: { host?: string; worker?: boolean }) => {
      const config = context.loadConfig();
      let client: RaglineClient;
      let stopWorker: (() => Promise<void>) | undefined;
      let telemetry: { port: number; close(): Promise<void> };
      if (options.worker) {
        const { startWorkerProcess } = await import('../../workers/main.js');
        const proc = await startWorkerProcess(config, { embeddedServer: false });
        stopWorker = () => proc.stop();
        telemetry = { port: proc.telemetry.port, close: async () => undefined };
        // Eager start needs the client on the worker's own connection: the server hands the first task back inline.
        client = new RaglineClient(
          new Client({ connection: proc.connection, namespace: proc.namespace }),
          config.RAGLINE_TASK_QUEUE,
          {
            maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS,
            redactKey: redactionKey(config),
            eagerStart: true,
            onStarted: ({ eager }) => proc.runtime.deps.metrics.queryStarts.inc({ start: eager ? 'eager' : 'normal' }),
          },
          // Without Redis, in-process tokens reach this API only from queries this worker generates.
          { tokens: proc.runtime.deps.tokens },
        );
      } else {
        client = await context.connect(config);
        const metrics = createMetrics();
        const queryClient = client;
        telemetry = await startTelemetryServer({
          port: config.RAGLINE_METRICS_PORT,
          registry: metrics.registry,
          checks: {
            temporal: async () => {
              const started = performance.now();
              const workers = await queryClient.workerCount();
              return {
                ok: workers > 0,
                latencyMs: Math.round(performance.now() - started),
                detail: `${workers} workers polling`,
              };
            },
          },
        });
      }
      const api = await startApi(config, client, options.host);
      console.error(`metrics on ${telemetry.port}${options.worker ? '; worker hosted here, eager starts on' : ''}`);
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await Promise.allSettled([api.close(), telemetry.close()]);
      if (stopWorker) await stopWorker();
      else await client.close();
    });

  program
    .command('token')
    .description('API tokens')
    .command('create')
    .description('make a bearer token for the HTTP API, and the RAGLINE_API_TOKENS entry that accepts it')
    .requiredOption('--tenant <tenant>', 'the only tenant the token may act for')
    .option('--expires <YYYY-MM-DD>', 'the UTC day from which the token is refused')
    .option(
      '--operator <name>',
      "an operator's token: may decide approvals as <name> (checked against RAGLINE_APPROVERS); implies --scope operator",
    )
    .option(
      '--scope <scope>',
      `what the token may do, repeatable: ${SCOPES.join(', ')} (default: query)`,
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .action((options: { tenant: string; expires?: string; operator?: string; scope?: string[] }) => {
      let made;
      try {
        const unknown = (options.scope ?? []).filter((scope) => !(SCOPES as readonly string[]).includes(scope));
        if (unknown.length > 0)
          throw new Error(`--scope must be one of ${SCOPES.join(', ')}, not ${unknown.join(', ')}`);
        made = createApiToken(options.tenant, {
          expires: options.expires,
          operator: options.operator,
          scopes: options.scope as Scope[] | undefined,
        });
      } catch (error) {
        throw new RaglineError(ErrorType.InvalidInput, error instanceof Error ? error.message : String(error));
      }
      console.log(`token (shown once, give it to the app): ${made.token}`);
      console.log(`add to RAGLINE_API_TOKENS (comma-separated): ${made.entry}`);
    });
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * Starts the HTTP API. Without tokens it has no authentication, so it listens on loopback only and says so; asking
 * for another address then is refused rather than silently exposing every tenant.
 */
async function startApi(
  config: Config,
  client: RaglineClient,
  host?: string,
): Promise<{ url: string; close: () => Promise<void> }> {
  const tokens = config.RAGLINE_API_TOKENS;
  if (tokens.length === 0 && host !== undefined && !LOOPBACK.has(host)) {
    throw new RaglineError(
      ErrorType.Configuration,
      `refusing to serve the API on ${host} without authentication: set RAGLINE_API_TOKENS (ragline token create --tenant <tenant>)`,
    );
  }
  const bind = host ?? (tokens.length > 0 ? '0.0.0.0' : '127.0.0.1');
  const { createHttpApi, operatorRoutes } = await import('../../http/server.js');
  const api = await createHttpApi(client, {
    tokens,
    rateLimitPerMinute: config.RAGLINE_API_RATE_LIMIT,
    routes: [operatorRoutes(client.client, client.taskQueue, { evalSet: config.RAGLINE_EVAL_SET })],
    logger: createLogger({ level: config.LOG_LEVEL, format: config.LOG_FORMAT, name: 'ragline-api' }),
  });
  await api.listen({ port: config.RAGLINE_HTTP_PORT, host: bind });
  console.error(
    {
      redis: 'streamed answers (?stream=true): tokens over Redis pub/sub from any worker',
      'in-process': 'streamed answers (?stream=true): tokens from the worker in this process only (no Redis)',
      none: 'streamed answers (?stream=true) arrive whole: no Redis and no worker here (see serve --worker)',
    }[client.streaming],
  );
  const url = `http://${bind.includes(':') ? `[${bind}]` : bind}:${config.RAGLINE_HTTP_PORT}`;
  console.error(
    tokens.length > 0
      ? `ragline API on ${url}: ${tokens.length} tokens configured, each bound to its tenant`
      : `ragline API on ${url}: no RAGLINE_API_TOKENS configured, so loopback only and no authentication`,
  );
  return { url, close: () => api.close() };
}
