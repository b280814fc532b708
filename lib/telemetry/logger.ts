import { createHash } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { destination, pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr. Secrets are redacted wherever they might appear in a logged object. */
export function createLogger(options: { level?: string; name?: string; destination?: DestinationStream } = {}): Logger {
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
    options.destination ?? destination(2),
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

/**
 * The query text as it may appear in logs: unchanged, or (RAGLINE_LOG_REDACT_QUERIES) a short hash. A hash rather
 * than a blank keeps repeated questions recognisable across lines without revealing what users asked.
 */
export function redactQuery(text: string, enabled: boolean): string {
  if (!enabled) return text;
  return `sha256:${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
}
