/**
 * `npm run bench -- stream [--queries N] [--pace MS]`: streamed answers through the HTTP API, for each token
 * channel (in-process, Redis pub/sub), against the fake OpenAI server writing one word every `pace` ms (a model's
 * decoding pace; default 20). Per channel: time to the first token and to the final event of `?stream=true`, the
 * synchronous `POST /v1/query` beside it (interleaved), and each token's delivery lag — from the fake writing the
 * delta to the SSE client parsing it, the side channel's own cost. Last stdout line is JSON.
 */
import path from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { createParser } from 'eventsource-parser';
import { createHttpApi } from '../http/server.js';
import { RaglineClient } from '../client/ragline-client.js';
import { RedisTokenChannel, type TokenChannel } from '../lib/stream/token-channel.js';
import { ingestDocumentsWorkflow } from '../workflows/index.js';
import { startFakeOpenAI, streamChunks } from '../test/support/fake-openai.js';
import { TestRedis } from '../test/support/redis.js';
import { flag, percentile, startBenchStack } from './support.js';

const SAMPLE_DOCS = path.resolve(import.meta.dirname, '../sample-corpus/docs');
const ANSWER =
  'API requests are limited per key and per minute [1]. When a client goes over the limit the API answers 429 with ' +
  'a Retry-After header saying when to try again [1], and the dashboard shows the current usage of each key [2].';
const QUESTIONS = ['What are the API rate limits?', 'How do I rotate an API key?', 'How do webhooks retry?'];

const round = (n: number) => Math.round(n * 10) / 10;
const p = (values: number[], q: number) =>
  round(
    percentile(
      [...values].sort((a, b) => a - b),
      q,
    ),
  );

export async function run(args: string[]): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const queries = Number(flag(args, 'queries') ?? 30);
  const pace = Number(flag(args, 'pace') ?? 20);
  const fake = await startFakeOpenAI();
  const redis = await TestRedis.start();
  const results: Record<string, unknown> = {};
  try {
    for (const channel of ['in-process', 'redis'] as const) {
      const stack = await startBenchStack({
        tuned: true,
        config: {
          OPENAI_BASE_URL: fake.baseURL,
          OPENAI_MODEL: 'fake-model',
          ...(channel === 'redis' ? { REDIS_URL: redis.url } : {}),
        },
      });
      const listener: TokenChannel =
        channel === 'redis' ? new RedisTokenChannel({ url: redis.url }) : stack.runtime.deps.tokens!;
      const client = new RaglineClient(stack.client, stack.taskQueue, { maxQueryChars: 4000 }, { tokens: listener });
      const api = await createHttpApi(client, { rateLimitPerMinute: 100_000 });
      try {
        await stack.client.workflow.execute(ingestDocumentsWorkflow, {
          taskQueue: stack.taskQueue,
          workflowId: `ingest-${channel}`,
          args: [{ paths: [SAMPLE_DOCS] }],
        });
        const base = await api.listen({ port: 0, host: '127.0.0.1' });
        fake.reset();
        fake.mode = { kind: 'answer', content: ANSWER };
        fake.streamDelayMs = pace;
        const firstToken: number[] = [];
        const final: number[] = [];
        const sync: number[] = [];
        const lags: number[] = [];
        const ask = (i: number, stream: boolean) =>
          fetch(`${base}/v1/query${stream ? '?stream=true' : ''}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            // Every query generates: the result and semantic caches are bypassed, and a new question each time keeps
            // the LLM-response cache from answering.
            body: JSON.stringify({
              query: `${QUESTIONS[(i + 3) % QUESTIONS.length]} (${channel} ${stream} ${i})`,
              options: { bypassCache: true },
            }),
          });
        for (let i = -3; i < queries; i++) {
          const started = performance.now();
          const response = await ask(i, true);
          const arrivals: number[] = [];
          let done = 0;
          const parser = createParser({
            onEvent: (event) => {
              if (event.event === 'token') arrivals.push(performance.now());
              if (event.event === 'final') done = performance.now();
            },
          });
          for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) parser.feed(chunk);
          const writes = fake.streamWrites.at(-1) ?? [];
          if (arrivals.length !== streamChunks(ANSWER).length || !done) {
            throw new Error(`${channel}: ${arrivals.length} tokens, final ${done > 0}`);
          }
          const syncStarted = performance.now();
          const answered = await ask(i, false);
          if (answered.status !== 200) throw new Error(`sync query: ${answered.status}`);
          await answered.json();
          if (i < 0) continue;
          sync.push(performance.now() - syncStarted);
          firstToken.push(arrivals[0]! - started);
          final.push(done - started);
          arrivals.forEach((at, k) => lags.push(at - (writes[k] ?? at)));
        }
        results[channel] = {
          queries,
          paceMs: pace,
          tokens: streamChunks(ANSWER).length,
          firstTokenP50Ms: p(firstToken, 50),
          firstTokenP95Ms: p(firstToken, 95),
          streamFinalP50Ms: p(final, 50),
          syncP50Ms: p(sync, 50),
          tokenLagP50Ms: p(lags, 50),
          tokenLagP95Ms: p(lags, 95),
        };
        console.log(`${channel.padEnd(10)} ${JSON.stringify(results[channel])}`);
      } finally {
        await api.close();
        if (channel === 'redis') await listener.close();
        await stack.stop();
      }
    }
  } finally {
    await redis.stop();
    await fake.close();
  }
  console.log(JSON.stringify(results));
}
