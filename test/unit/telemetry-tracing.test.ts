import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { WorkerOptions } from '@temporalio/worker';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  otlpTracesUrl,
  startTracing,
  temporalClientInterceptors,
  temporalWorkerTracing,
  WORKFLOW_INTERCEPTORS_MODULE,
  withSpan,
  type Tracing,
} from '../../lib/telemetry/tracing.js';

const exporter = new InMemorySpanExporter();
let tracing: Tracing;

beforeAll(() => {
  tracing = startTracing({ serviceName: 'ragline-test', spanProcessor: new SimpleSpanProcessor(exporter) });
});
afterAll(async () => {
  await tracing.shutdown();
});
beforeEach(() => exporter.reset());

/** Resource detection finishes asynchronously, so the processor may still hold ended spans. */
async function finishedSpans() {
  await tracing.spanProcessor?.forceFlush();
  return exporter.getFinishedSpans();
}

describe('withSpan', () => {
  it('records the span with its attributes and the service name', async () => {
    const result = await withSpan('retrieval.search', { 'retrieval.k': 5 }, async (span) => {
      span.setAttribute('retrieval.top_score', 0.82);
      return 'done';
    });
    expect(result).toBe('done');
    const [span] = await finishedSpans();
    expect(span?.name).toBe('retrieval.search');
    expect(span?.attributes).toMatchObject({ 'retrieval.k': 5, 'retrieval.top_score': 0.82 });
    expect(span?.resource.attributes['service.name']).toBe('ragline-test');
  });

  it('nests spans under the active one', async () => {
    await withSpan('activity', {}, () => withSpan('cache.lookup', { 'cache.hit': false }, () => undefined));
    const spans = await finishedSpans();
    const parent = spans.find((s) => s.name === 'activity');
    const child = spans.find((s) => s.name === 'cache.lookup');
    expect(parent).toBeDefined();
    expect(child?.attributes['cache.hit']).toBe(false);
    expect(child?.parentSpanId).toBe(parent?.spanContext().spanId);
    expect(child?.spanContext().traceId).toBe(parent?.spanContext().traceId);
  });

  it('marks the span failed and rethrows the original error', async () => {
    const error = new Error('llm unavailable');
    await expect(withSpan('llm.generate', { 'llm.model': 'gpt-4o-mini' }, () => Promise.reject(error))).rejects.toBe(
      error,
    );
    const [span] = await finishedSpans();
    expect(span?.status).toMatchObject({ code: 2, message: 'llm unavailable' });
    expect(span?.events.some((e) => e.name === 'exception')).toBe(true);
  });

  it('leaves no span active afterwards', async () => {
    await withSpan('outer', {}, () => undefined);
    expect(trace.getActiveSpan()).toBeUndefined();
  });
});

describe('Temporal wiring', () => {
  it('gives the worker interceptors, the workflow module and an exporter sink when tracing is on', () => {
    const options: Pick<WorkerOptions, 'interceptors' | 'sinks'> = temporalWorkerTracing(tracing);
    expect(options.interceptors?.workflowModules).toEqual([WORKFLOW_INTERCEPTORS_MODULE]);
    expect(options.interceptors?.activity).toHaveLength(1);
    expect(options.sinks?.exporter?.export).toBeDefined();
    expect(temporalClientInterceptors().workflow).toHaveLength(1);
  });

  it('adds nothing to the worker when tracing is off', () => {
    const off = startTracing({ serviceName: 'ragline-test' });
    expect(off.enabled).toBe(false);
    expect(temporalWorkerTracing(off)).toEqual({ interceptors: {}, sinks: {} });
  });

  it('appends the traces path to a base OTLP endpoint only once', () => {
    expect(otlpTracesUrl('http://jaeger:4318')).toBe('http://jaeger:4318/v1/traces');
    expect(otlpTracesUrl('http://jaeger:4318/')).toBe('http://jaeger:4318/v1/traces');
    expect(otlpTracesUrl('http://collector:4318/v1/traces')).toBe('http://collector:4318/v1/traces');
  });
});
