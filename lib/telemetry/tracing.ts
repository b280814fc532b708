import { createRequire } from 'node:module';
import { context, propagation, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import type { ClientInterceptors } from '@temporalio/client';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';

export interface TracingOptions {
  /** `service.name` of every span; usually `config.OTEL_SERVICE_NAME`. */
  serviceName: string;
  /** OTLP/HTTP base URL (`http://jaeger:4318`) or full traces URL; unset exports nothing. */
  otlpEndpoint?: string;
  /** Replaces the OTLP exporter, e.g. `new SimpleSpanProcessor(new InMemorySpanExporter())` in tests. */
  spanProcessor?: SpanProcessor;
}

export interface Tracing {
  /** False when there was nowhere to send spans and the SDK was not started. */
  enabled: boolean;
  resource: Resource;
  /** The processor every span goes through, workflow spans included (see {@link temporalWorkerTracing}). */
  spanProcessor: SpanProcessor | undefined;
  /** Flushes pending spans; call after the worker has stopped so its last spans are not lost. */
  shutdown(): Promise<void>;
}

/** OTEL_EXPORTER_OTLP_ENDPOINT is a base URL by the OTLP spec; the traces signal lives under /v1/traces. */
export function otlpTracesUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/v1/traces') ? base : `${base}/v1/traces`;
}

/**
 * Starts OpenTelemetry tracing for this process. Call it first in the composition root, before the Temporal
 * client and worker are created, so their interceptors find the global tracer provider.
 *
 * With neither an endpoint nor a processor the SDK is not started at all: spans would go nowhere, and the
 * API's no-op tracer costs nothing.
 */
export function startTracing(options: TracingOptions): Tracing {
  const resource = new Resource({ 'service.name': options.serviceName });
  const spanProcessor =
    options.spanProcessor ??
    (options.otlpEndpoint
      ? new BatchSpanProcessor(new OTLPTraceExporter({ url: otlpTracesUrl(options.otlpEndpoint) }))
      : undefined);
  if (!spanProcessor) return { enabled: false, resource, spanProcessor, shutdown: async () => undefined };

  const sdk = new NodeSDK({
    resource,
    spanProcessors: [spanProcessor],
    // Without this NodeSDK 0.57 builds an OTLP log exporter towards localhost:4318 from its defaults; logs go
    // through pino, and Jaeger accepts no logs.
    logRecordProcessors: [],
  });
  sdk.start();
  return {
    enabled: true,
    resource,
    spanProcessor,
    async shutdown() {
      await sdk.shutdown();
      // NodeSDK leaves its provider registered globally; clearing it lets a later startTracing (tests, a
      // restarted embedded worker) register again instead of being ignored as a duplicate.
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

/**
 * Runs `fn` inside a child span of the current one, e.g. `cache.lookup`, `retrieval.search` or `llm.generate`
 * within an activity. A throw marks the span as failed and is rethrown unchanged.
 */
export async function withSpan<T>(
  name: string,
  attributes: Attributes,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  return trace.getTracer('ragline').startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      if (err instanceof Error) span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}

const require = createRequire(import.meta.url);

/**
 * Module exporting the workflow-side interceptors (run in the workflow sandbox). Give it to
 * `bundleWorkflowCode({ workflowInterceptorModules })` when workflows are pre-bundled; with `workflowsPath`
 * it reaches the bundler through {@link temporalWorkerTracing}'s `interceptors.workflowModules`.
 */
export const WORKFLOW_INTERCEPTORS_MODULE =
  require.resolve('@temporalio/interceptors-opentelemetry/lib/workflow-interceptors');

/**
 * Interceptors for `Client` (`new Client({ connection, interceptors: temporalClientInterceptors() })`): starting,
 * signalling and updating a workflow opens a span and passes its context to the workflow in headers.
 */
export function temporalClientInterceptors(): ClientInterceptors {
  return { workflow: [new OpenTelemetryWorkflowClientInterceptor()] };
}

/**
 * Worker options that trace workflows and activities: spread into `Worker.create({ ...temporalWorkerTracing(t) })`.
 *
 * Workflow code cannot reach an exporter from its sandbox, so its spans leave through the `exporter` sink into
 * the process's span processor. Empty when tracing is off, which keeps the interceptors out of the workflow
 * bundle and the activity path.
 */
export function temporalWorkerTracing(tracing: Tracing): {
  interceptors: WorkerInterceptors;
  sinks: InjectedSinks<OpenTelemetrySinks> | Record<never, never>;
} {
  if (!tracing.enabled || !tracing.spanProcessor) return { interceptors: {}, sinks: {} };
  return {
    interceptors: {
      workflowModules: [WORKFLOW_INTERCEPTORS_MODULE],
      activity: [
        (ctx) => ({
          inbound: new OpenTelemetryActivityInboundInterceptor(ctx),
          outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
        }),
      ],
    },
    sinks: { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) },
  };
}
