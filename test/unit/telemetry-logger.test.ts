import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, queryLogger, redactQuery } from '../../lib/telemetry/logger.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      callback();
    },
  });
  return { lines, logger: createLogger({ level: 'info', destination }) };
}

describe('logger', () => {
  it('binds query ids on a child logger and leaves out the ones not given', () => {
    const { lines, logger } = capture();
    queryLogger(logger, { queryId: 'q-1', workflowId: 'answer-q-1', tenant: undefined }).info('answered');
    expect(lines[0]).toMatchObject({ queryId: 'q-1', workflowId: 'answer-q-1', msg: 'answered' });
    expect(lines[0]).not.toHaveProperty('tenant');
  });

  it('redacts secrets in logged objects', () => {
    const { lines, logger } = capture();
    logger.info({ llm: { apiKey: 'sk-123' }, env: { REDIS_URL: 'redis://:pw@host' } }, 'started');
    expect(JSON.stringify(lines[0])).not.toContain('sk-123');
    expect(JSON.stringify(lines[0])).not.toContain(':pw@');
  });
});

describe('redactQuery', () => {
  it('returns the text unchanged when redaction is off', () => {
    expect(redactQuery('how do I reset my password?', false)).toBe('how do I reset my password?');
  });

  it('returns a stable hash that does not contain the text when redaction is on', () => {
    const redacted = redactQuery('how do I reset my password?', true);
    expect(redacted).toMatch(/^sha256:[0-9a-f]{16}$/);
    expect(redactQuery('how do I reset my password?', true)).toBe(redacted);
    expect(redactQuery('how do I rotate an API key?', true)).not.toBe(redacted);
  });
});
