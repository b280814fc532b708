/**
 * `npm run bench -- api [--serial N] [--total N] [--concurrency N]`: a cached answer through the HTTP API, measured in
 * one run on one tuned dev server, with the serial phases interleaved so drift hits every variant alike:
 * - `ask`: `RaglineClient.ask` in process, no HTTP (what the API adds is measured against this);
 * - `api`: `POST /v1/query` with a bearer token, the API's client on its own connection (a normal start);
 * - `apiEager`: the same, the API's client sharing the worker's NativeConnection and asking for eager start, as
 *   `ragline serve --worker` runs it.
 * - `floor` / `floorEager`: Temporal's own bound, the one-no-op-local-activity floorWorkflow started normally and
 *   eagerly on the same worker: the share of a hit that eager start can remove on this server.
 * Goal (issue #14): apiEager.p50MsSerial ≤ 0.8 × api.p50MsSerial. The API's overhead is api − ask at p50. Every eager
 * request is checked to have been started eagerly (counted), and every answer to be a cache hit. Last stdout line is
 * JSON: `{ "ask": {...}, "api": {...}, "apiEager": {...}, "floor": {...}, "floorEager": {...}, "eagerStarts": n,
 * "normalStarts": n, "failures": {...},
 * "breakdown": { "normal": {...}, "eager": {...} } }` — the breakdown (`--breakdown N` samples, default 50) says where
 * a hit's time goes on each path, from the start call to the result.
 */
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { createHttpApi } from '../http/server.js';
import { RaglineClient } from '../client/ragline-client.js';
import { createApiToken, parseApiTokens } from '../lib/api-tokens.js';
import type { AnswerQueryResult } from '../contracts/query.js';
import { floorWorkflow, ingestDocumentsWorkflow } from './workflows/index.js';
import { flag, measureInterleaved, percentile, startBenchStack } from './support.js';

const EventType = proto.temporal.api.enums.v1.EventType;
type EventType = proto.temporal.api.enums.v1.EventType;
const SAMPLE_DOCS = fileURLToPath(new URL('../sample-corpus/docs', import.meta.url));
const HIT_QUESTION = 'How do I reset my password?';

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const options = {
    serial: Number(flag(args, 'serial') ?? 200),
    total: Number(flag(args, 'total') ?? 300),
    concurrency: Number(flag(args, 'concurrency') ?? 4),
    breakdown: Number(flag(args, 'breakdown') ?? 50),
  };
  const stack = await startBenchStack({ tuned: true });
  const apis: FastifyInstance[] = [];
  try {
    await stack.client.workflow.execute(ingestDocumentsWorkflow, {
      taskQueue: stack.taskQueue,
      workflowId: `ingest-bench-${randomUUID()}`,
      args: [{ paths: [SAMPLE_DOCS] }],
    });
    const limits = { maxQueryChars: 4000 };
    const direct = new RaglineClient(stack.client, stack.taskQueue, limits);
    const starts = { eager: 0, normal: 0 };
    const eagerClient = new RaglineClient(new Client({ connection: stack.nativeConnection }), stack.taskQueue, {
      ...limits,
      eagerStart: true,
      onStarted: ({ eager }) => (starts[eager ? 'eager' : 'normal'] += 1),
    });
    await direct.ask({ query: HIT_QUESTION });
    const eagerFloorClient = new Client({ connection: stack.nativeConnection });
    const floor = async (client: Client, requestEagerStart: boolean) => {
      const handle = await client.workflow.start(floorWorkflow, {
        taskQueue: stack.taskQueue,
        workflowId: `floor-${randomUUID()}`,
        requestEagerStart,
      });
      if (requestEagerStart) starts[handle.eagerlyStarted ? 'eager' : 'normal'] += 1;
      await handle.result();
    };

    const token = createApiToken('default');
    const serve = async (client: RaglineClient) => {
      const api = await createHttpApi(client, { tokens: parseApiTokens(token.entry), rateLimitPerMinute: 1_000_000 });
      apis.push(api);
      return `${await api.listen({ port: 0, host: '127.0.0.1' })}/v1/query`;
    };
    const normalUrl = await serve(direct);
    const eagerUrl = await serve(eagerClient);
    const hit = (where: string, result: AnswerQueryResult) => {
      if (result.cache.result !== 'hit') throw new Error(`${where}: missed the result cache`);
    };
    const post = async (url: string) => {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
        body: JSON.stringify({ query: HIT_QUESTION }),
      });
      if (response.status !== 200) throw new Error(`${url}: HTTP ${response.status} ${await response.text()}`);
      hit(url, (await response.json()) as AnswerQueryResult);
    };

    // A failed request is counted and its first message shown, not thrown: on a loaded machine one timed-out query
    // must not abort the run with requests still in flight.
    const failures: Record<string, { count: number; first?: string }> = {};
    const counted = (name: string, once: () => Promise<void>) => async () => {
      try {
        await once();
      } catch (error) {
        const failure = (failures[name] ??= { count: 0 });
        failure.count += 1;
        failure.first ??= error instanceof Error ? error.message : String(error);
      }
    };
    const figures = await measureInterleaved(
      {
        ask: counted('ask', async () => hit('ask', await direct.ask({ query: HIT_QUESTION }))),
        api: counted('api', () => post(normalUrl)),
        apiEager: counted('apiEager', () => post(eagerUrl)),
        floor: counted('floor', () => floor(stack.client, false)),
        floorEager: counted('floorEager', () => floor(eagerFloorClient, true)),
      },
      options,
    );
    for (const [name, failure] of Object.entries(failures))
      console.log(`${name}: ${failure.count} requests failed (first: ${failure.first ?? ''})`);
    const ratio = figures.apiEager.p50MsSerial / figures.api.p50MsSerial;
    console.log(
      `hit p50 (serial): ask ${figures.ask.p50MsSerial} ms, API ${figures.api.p50MsSerial} ms, API eager ` +
        `${figures.apiEager.p50MsSerial} ms → eager/non-eager ${ratio.toFixed(2)} (goal ≤ 0.8: ${ratio <= 0.8 ? 'met' : 'NOT met'})`,
    );
    const floorRatio = figures.floorEager.p50MsSerial / figures.floor.p50MsSerial;
    console.log(
      `Temporal's bound, floorWorkflow (one no-op local activity) p50 (serial): ${figures.floor.p50MsSerial} ms, ` +
        `eager ${figures.floorEager.p50MsSerial} ms → eager/non-eager ${floorRatio.toFixed(2)}`,
    );
    console.log(
      `API overhead over client.ask at p50: ${(figures.api.p50MsSerial - figures.ask.p50MsSerial).toFixed(2)} ms serial, ` +
        `${(figures.api.p50Ms - figures.ask.p50Ms).toFixed(2)} ms at concurrency ${options.concurrency}`,
    );
    console.log(
      `concurrency ${options.concurrency}: ask ${figures.ask.qps} q/s, API ${figures.api.qps} q/s, API eager ${figures.apiEager.qps} q/s; ` +
        `eager requests (API and floor) started eagerly: ${starts.eager}, normally: ${starts.normal}`,
    );
    const where = {
      normal: await breakdown(direct, options.breakdown),
      eager: await breakdown(eagerClient, options.breakdown),
    };
    for (const [name, b] of Object.entries(where))
      console.log(
        `where a ${name} hit's time goes (p50 of ${options.breakdown}, ms after the start call): start call returned ` +
          `${b.startReturned}, first workflow task started ${b.taskStarted} and completed ${b.taskCompleted} ` +
          `(server clock), result in the client ${b.result}`,
      );
    console.log(
      JSON.stringify({
        ...figures,
        eagerStarts: starts.eager,
        normalStarts: starts.normal,
        failures,
        breakdown: where,
      }),
    );
  } finally {
    for (const api of apis) await api.close();
    await stack.stop();
  }
}

/**
 * Where a cached answer's time goes, without HTTP: the start call, the first workflow task as the server recorded it
 * (one task answers a hit), and the result reaching the client. Eager start removes the wait between the start and
 * the task's start (the matching hop and one persistence write); the rest is common to both paths.
 */
async function breakdown(client: RaglineClient, samples: number) {
  const marks = {
    startReturned: [] as number[],
    taskStarted: [] as number[],
    taskCompleted: [] as number[],
    result: [] as number[],
  };
  for (let i = 0; i < samples; i += 1) {
    const t0 = performance.timeOrigin + performance.now();
    const { queryId } = await client.startAsk({ query: HIT_QUESTION });
    const t1 = performance.timeOrigin + performance.now();
    const handle = client.client.workflow.getHandle(queryId);
    await handle.result();
    const t2 = performance.timeOrigin + performance.now();
    const events = (await handle.fetchHistory()).events ?? [];
    const at = (type: EventType) => {
      const time = events.find((event) => event.eventType === type)?.eventTime;
      return time ? Number(time.seconds ?? 0) * 1000 + (time.nanos ?? 0) / 1e6 - t0 : NaN;
    };
    marks.startReturned.push(t1 - t0);
    marks.taskStarted.push(at(EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED));
    marks.taskCompleted.push(at(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED));
    marks.result.push(t2 - t0);
  }
  const p50 = (values: number[]) =>
    Math.round(
      percentile(
        [...values].sort((a, b) => a - b),
        50,
      ) * 100,
    ) / 100;
  return {
    startReturned: p50(marks.startReturned),
    taskStarted: p50(marks.taskStarted),
    taskCompleted: p50(marks.taskCompleted),
    result: p50(marks.result),
  };
}
