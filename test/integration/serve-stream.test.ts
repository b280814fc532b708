import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createParser } from 'eventsource-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, runCli } from '../support/cli.js';
import { startFakeOpenAI, streamChunks, type FakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, tempDir } from '../support/ragline.js';
import { freeMetricsPorts, freePort } from '../support/redis.js';
import { startTestTemporal } from '../support/temporal.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/ragline.mjs');
const ANSWER = 'Requests are limited per API key [1], and going over returns 429 with Retry-After [1].';

/** `ragline serve --worker` as a user starts it, with no Redis: streamed tokens use the in-process channel. */
describe('ragline serve --worker streams answers without Redis', () => {
  let env: TestWorkflowEnvironment;
  let fake: FakeOpenAI;
  let serve: ChildProcess;
  let dataDir: string;
  let base: string;
  let vars: Record<string, string>;
  let stderr = '';

  beforeAll(async () => {
    [env, fake] = await Promise.all([startTestTemporal(), startFakeOpenAI()]);
    fake.mode = { kind: 'answer', content: ANSWER };
    dataDir = await tempDir();
    const [httpPort, [metricsPort]] = await Promise.all([freePort(), freeMetricsPorts(1)]);
    vars = childEnv({
      TEMPORAL_ADDRESS: env.address,
      RAGLINE_TASK_QUEUE: `serve-stream-${randomUUID()}`,
      RAGLINE_DATA_DIR: dataDir,
      RAGLINE_HTTP_PORT: String(httpPort),
      RAGLINE_METRICS_PORT: String(metricsPort),
      OPENAI_BASE_URL: fake.baseURL,
      OPENAI_MODEL: 'fake-model',
    });
    base = `http://127.0.0.1:${httpPort}`;
    serve = spawn(process.execPath, [BIN, 'serve', '--worker'], { env: vars });
    await new Promise<void>((resolve, reject) => {
      serve.stderr?.on('data', (data: Buffer) => {
        stderr += data.toString();
        if (stderr.includes('streamed answers')) resolve();
      });
      serve.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${stderr}`)));
    });
    const ingested = await runCli(['ingest', path.join(SAMPLE_CORPUS, 'api-rate-limits.md'), '--json'], vars);
    expect(ingested.code).toBe(0);
  });
  afterAll(async () => {
    if (serve && serve.exitCode === null) {
      await new Promise((resolve) => {
        serve.once('exit', resolve);
        serve.kill('SIGTERM');
      });
    }
    await env?.teardown();
    await fake?.close();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('says tokens come from its own worker, and streams them before the final result', async () => {
    expect(stderr).toContain('tokens from the worker in this process only (no Redis)');
    const hold = fake.holdStream(2);
    const response = await fetch(`${base}/v1/query?stream=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: 'What are the API rate limits?' }),
    });
    expect(response.status).toBe(200);
    const events: Array<{ event?: string; data: string }> = [];
    const parser = createParser({ onEvent: (event) => events.push(event) });
    const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
    let released = false;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
      // Two tokens while the fake holds the rest of the answer: they came while the workflow ran.
      if (!released && events.filter((e) => e.event === 'token').length === 2) {
        expect(events.some((e) => e.event === 'final')).toBe(false);
        hold.release();
        released = true;
      }
    }
    expect(released).toBe(true);
    expect(JSON.parse(events[0]!.data)).toMatchObject({ channel: 'in-process' });
    const tokens = events.filter((e) => e.event === 'token').map((e) => (JSON.parse(e.data) as { text: string }).text);
    expect(tokens).toEqual(streamChunks(ANSWER));
    expect(events.at(-1)?.event).toBe('final');
    expect(JSON.parse(events.at(-1)!.data)).toMatchObject({ answer: ANSWER, model: 'fake-model' });
  });
});
