import { normalizeQuery } from '../../lib/cache/keys.js';
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, queryLogger } from '../../lib/telemetry/logger.js';
import { redactQuery } from '../../lib/redact.js';

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
  const KEY = 'k'.repeat(32);

  it('returns the text unchanged when redaction is off', () => {
    expect(redactQuery('how do I reset my password?', undefined)).toBe('how do I reset my password?');
  });

  it('returns a stable keyed hash that does not contain the text when redaction is on', () => {
    const redacted = redactQuery('how do I reset my password?', KEY);
    expect(redacted).toMatch(/^hmac:[0-9a-f]{32}$/);
    expect(redactQuery('how do I reset my password?', KEY)).toBe(redacted);
    expect(redactQuery('how do I rotate an API key?', KEY)).not.toBe(redacted);
    // Callers hash the normalised question: the query log (which stores it normalised) and the logs agree.
    expect(redactQuery(normalizeQuery('How do I  reset my password'), KEY)).toBe(
      redactQuery(normalizeQuery('how do I reset my password?'), KEY),
    );
  });

  it('cannot be reversed by hashing a dictionary without the key: another key gives another hash', () => {
    const question = 'how do I reset my password?';
    expect(redactQuery(question, 'x'.repeat(32))).not.toBe(redactQuery(question, KEY));
    // The plain SHA-256 prefix it replaced: anyone could recompute it from a guessed question.
    const plain = createHash('sha256').update(question).digest('hex');
    expect(redactQuery(question, KEY)).not.toContain(plain.slice(0, 16));
  });
});
