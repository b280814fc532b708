import fs from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RaglineClient } from '../../client/ragline-client.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import {
  startTracing,
  temporalClientInterceptors,
  temporalWorkerTracing,
  WORKFLOW_INTERCEPTORS_MODULE,
} from '../../lib/telemetry/tracing.js';
import { createRuntime, createWorker, workflowsPath, type Runtime } from '../../workers/runtime.js';
import { quietBundlerLogger, SAMPLE_CORPUS, tempDir, testConfig } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';

// Tracing starts before any client or worker exists, as in workers/main.ts, so their interceptors find the
// global tracer provider.
const exporter = new InMemorySpanExporter();
const tracing = startTracing({ serviceName: 'ragline-test', spanProcessor: new SimpleSpanProcessor(exporter) });

async function finishedSpans(): Promise<ReadableSpan[]> {
  await tracing.spanProcessor!.forceFlush();
  return exporter.getFinishedSpans();
}

describe('one trace from the client through the query workflow to its activities', () => {
  let env: TestWorkflowEnvironment;
  let runtime: Runtime;
  let worker: Worker;
  let running: Promise<void>;
  let dataDir: string;
  let ragline: RaglineClient;

  beforeAll(async () => {
    env = await startTestTemporal();
    dataDir = await tempDir();
    const config = testConfig({ RAGLINE_DATA_DIR: dataDir });
    runtime = await createRuntime(config, { logger: createLogger({ level: 'silent' }) });
    const taskQueue = `ragline-trace-${randomUUID()}`;
    // A pre-built bundle skips the worker's own bundling, which is where interceptors.workflowModules would go in.
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: workflowsPath(),
      workflowInterceptorModules: [WORKFLOW_INTERCEPTORS_MODULE],
      logger: quietBundlerLogger,
    });
    worker = await createWorker({
      connection: env.nativeConnection,
      namespace: env.namespace ?? 'default',
      taskQueue,
      runtime,
      workflowBundle,
      tracing: temporalWorkerTracing(tracing),
    });
    running = worker.run();
    const client = new Client({
      connection: env.connection,
      namespace: env.namespace ?? 'default',
      interceptors: temporalClientInterceptors(),
    });
    ragline = new RaglineClient(client, taskQueue, { maxQueryChars: config.RAGLINE_MAX_QUERY_CHARS });
    await ragline.ingest([SAMPLE_CORPUS]);
  });

  afterAll(async () => {
    if (worker) {
      worker.shutdown();
      await running;
    }
    await runtime?.close();
    await env?.teardown();
    await tracing.shutdown();
    if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
  });

  it('links StartWorkflow, RunWorkflow and the RunActivity spans of a miss under one traceId', async () => {
    expect(tracing.enabled).toBe(true);
    // Only the query's spans from here on; ingestion has traces of its own.
    await tracing.spanProcessor!.forceFlush();
    exporter.reset();

    const result = await ragline.ask({ query: 'How do I reset my password?' });
    expect(result.cache.result).toBe('miss');

    // Workflow spans leave the sandbox through a sink called after the workflow task completes, so they can
    // trail the result.
    const spans = await vi.waitFor(
      async () => {
        const all = await finishedSpans();
        const names = all.map((s) => s.name);
        expect(names).toContain('RunWorkflow:answerQueryWorkflow');
        expect(names).toContain('RunActivity:generateAnswer');
        return all;
      },
      { timeout: 5000, interval: 50 },
    );
    const named = (name: string) => {
      const found = spans.filter((s) => s.name === name);
      expect(found, `spans named ${name} among ${spans.map((s) => s.name).join(', ')}`).toHaveLength(1);
      return found[0]!;
    };

    const start = named('StartWorkflow:answerQueryWorkflow');
    expect(start.parentSpanId, 'the client span is the root of the trace').toBeUndefined();
    const run = named('RunWorkflow:answerQueryWorkflow');
    const retrieve = named('RunActivity:retrieveChunks');
    const generate = named('RunActivity:generateAnswer');
    // The cache lookup is a local activity; the SDK traces it like any other.
    const lookup = named('RunActivity:lookupCachedAnswer');

    const traceId = start.spanContext().traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe('0'.repeat(32));
    for (const span of [run, retrieve, generate, lookup]) {
      expect(span.spanContext().traceId, span.name).toBe(traceId);
    }
    // The workflow run hangs off the client's start, and each activity off the workflow's schedule of it.
    expect(run.parentSpanId).toBe(start.spanContext().spanId);
    // The miss path also writes the answer to the result cache (a local activity too).
    for (const activity of ['lookupCachedAnswer', 'retrieveChunks', 'generateAnswer', 'storeCachedAnswer']) {
      const scheduled = named(`StartActivity:${activity}`);
      expect(scheduled.parentSpanId, scheduled.name).toBe(run.spanContext().spanId);
      expect(named(`RunActivity:${activity}`).parentSpanId, activity).toBe(scheduled.spanContext().spanId);
    }
    // Inside the activities: the cache lookup, the search and the generation, with what they did.
    const inner = [
      ['cache.lookup', 'lookupCachedAnswer'],
      ['retrieval.search', 'retrieveChunks'],
      ['generation', 'generateAnswer'],
    ] as const;
    for (const [spanName, activity] of inner) {
      expect(named(spanName).parentSpanId, spanName).toBe(named(`RunActivity:${activity}`).spanContext().spanId);
    }
    expect(named('cache.lookup').attributes['cache.hit']).toBe(false);
    expect(named('retrieval.search').attributes['retrieval.k']).toBe(5);
    expect(named('retrieval.search').attributes['retrieval.top_score']).toBeGreaterThan(0);
    expect(named('generation').attributes['llm.model']).toBe('extractive');
    // Every span of this query belongs to the one trace, and carries the service name.
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([traceId]));
    expect(run.resource.attributes['service.name']).toBe('ragline-test');
    expect(retrieve.resource.attributes['service.name']).toBe('ragline-test');
  });
});
