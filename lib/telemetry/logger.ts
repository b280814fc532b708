import { trace } from '@opentelemetry/api';
import { destination, pino, transport, type DestinationStream, type Logger } from 'pino';

export type { Logger };

export type LogFormat = 'auto' | 'json' | 'pretty';

/**
 * Logs on stderr: JSON for machines, or pino-pretty's readable lines when a person is watching (`auto` picks pretty
 * when stderr is a terminal). Secrets are redacted wherever they might appear in a logged object.
 */
export function createLogger(
  options: { level?: string; name?: string; destination?: DestinationStream; format?: LogFormat } = {},
): Logger {
  const pretty =
    options.destination === undefined &&
    (options.format === 'pretty' || (options.format !== 'json' && process.stderr.isTTY === true));
  return pino(
    {
      name: options.name ?? 'ragline',
      level: options.level ?? 'info',
      redact: {
        paths: [
          '*.apiKey',
          '*.password',
          '*.authorization',
          '*.OPENAI_API_KEY',
          '*.RAGLINE_REDACT_KEY',
          '*.QDRANT_API_KEY',
          '*.REDIS_URL',
          'config',
        ],
        censor: '[redacted]',
      },
      // A log line written inside a span carries its ids, so Grafana/Jaeger can jump from a log to its trace.
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { traceId, spanId };
      },
    },
    options.destination ??
      (pretty
        ? // pino-pretty runs in a worker thread, so formatting never holds up the event loop of a busy worker.
          transport({
            target: 'pino-pretty',
            options: { destination: 2, colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' },
          })
        : destination(2)),
  );
}

/** Fields that tie a log line to one query; all optional because ingestion and startup have none of them. */
export interface QueryLogContext {
  queryId?: string;
  workflowId?: string;
  tenant?: string;
}

/** Child logger whose every line carries the query's ids, so one query's path can be grepped end to end. */
export function queryLogger(logger: Logger, context: QueryLogContext): Logger {
  const bindings: Record<string, string> = {};
  for (const [key, value] of Object.entries(context)) if (value !== undefined) bindings[key] = value;
  return logger.child(bindings);
}

type TemporalLogLevel = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/**
 * The Temporal SDK's logger interface over pino, for `Runtime.install({ logger })`: workflow and activity logs
 * (`log` from @temporalio/workflow and @temporalio/activity) then come out as the same JSON lines as ours, with the
 * SDK's context — workflowId, runId, activityType, taskQueue — as fields.
 */
export function temporalLogger(logger: Logger) {
  const levels: Record<TemporalLogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  const write = (level: TemporalLogLevel, message: string, meta?: Record<string, unknown>) =>
    logger[levels[level]]({ ...meta }, message);
  return {
    log: write,
    trace: (message: string, meta?: Record<string, unknown>) => write('TRACE', message, meta),
    debug: (message: string, meta?: Record<string, unknown>) => write('DEBUG', message, meta),
    info: (message: string, meta?: Record<string, unknown>) => write('INFO', message, meta),
    warn: (message: string, meta?: Record<string, unknown>) => write('WARN', message, meta),
    error: (message: string, meta?: Record<string, unknown>) => write('ERROR', message, meta),
  };
}
