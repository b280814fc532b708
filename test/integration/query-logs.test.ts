import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/telemetry/logger.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';

/** Collects pino's JSON lines in memory. */
function memoryLog() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = { write: (chunk: string) => void lines.push(JSON.parse(chunk) as Record<string, unknown>) };
  return { lines, logger: createLogger({ level: 'info', destination: stream }) };
}

describe('query logs', () => {
  let env: TestWorkflowEnvironment;
  const running: TestRagline[] = [];
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    for (const r of running) await r.stop();
    await env?.teardown();
  });

  async function askWith(redact: boolean, question: string) {
    const log = memoryLog();
    const ragline = await startRagline({
      env,
      config: { RAGLINE_LOG_REDACT_QUERIES: String(redact), RAGLINE_REDACT_KEY: 'r'.repeat(32) },
      overrides: { logger: log.logger },
    });
    running.push(ragline);
    await ragline.ingest([SAMPLE_CORPUS], 'acme');
    const workflowId = `query-${randomUUID()}`;
    await env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId,
      args: [{ query: question, tenant: 'acme' }],
    });
    return { lines: log.lines.filter((l) => l.workflowId === workflowId), workflowId };
  }

  it('ties each line to the query by workflow id and tenant', async () => {
    const { lines, workflowId } = await askWith(false, 'How do I set up webhooks?');
    expect(lines.map((l) => l.msg).sort()).toEqual(['answer generated', 'answer groundedness', 'query cache lookup']);
    for (const line of lines) {
      expect(line).toMatchObject({ queryId: workflowId, tenant: 'acme', query: 'How do I set up webhooks?' });
    }
    expect(lines[0]).toMatchObject({ cache: 'miss' });
    expect(lines.find((l) => l.msg === 'answer generated')).toMatchObject({ model: 'extractive', uncited: false });
  });

  it('logs a hash instead of the question when redaction is on', async () => {
    const question = 'My secret project codename is BLUEBIRD: how do I export data?';
    const { lines } = await askWith(true, question);
    expect(lines).toHaveLength(3);
    const text = JSON.stringify(lines);
    expect(text).not.toContain('BLUEBIRD');
    expect(lines[0]?.query).toMatch(/^hmac:[0-9a-f]{32}$/);
    expect(lines[1]?.query).toBe(lines[0]?.query);
  });
});
