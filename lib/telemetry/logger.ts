import { destination, pino, type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs on stderr. Secrets are redacted wherever they might appear in a logged object. */
export function createLogger(options: { level?: string; name?: string } = {}): Logger {
  return pino(
    {
      name: options.name ?? 'ragline',
      level: options.level ?? 'info',
      redact: {
        paths: ['*.apiKey', '*.password', '*.authorization', '*.OPENAI_API_KEY', '*.QDRANT_API_KEY', '*.REDIS_URL', 'config'],
        censor: '[redacted]',
      },
    },
    destination(2),
  );
}
