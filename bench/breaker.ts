/**
 * `npm run bench -- breaker [--n 200]`: what an open breaker costs a query. LLM: runs the same uncached questions
 * (a) with no LLM configured (the extractive generator, still run as the generation activity) and (b) with an LLM
 * whose breaker is held open, answered extractively by the fallback (a local activity, the generation activity
 * skipped); the difference of the medians is the open LLM breaker's added latency, negative when skipping the
 * remote activity saves more than the open breaker costs. Store: the
 * same questions (c) answered from the result cache of a healthy worker, the one-local-activity path that touches
 * no store, and (d) on a worker whose store breaker is held open, answered with the last good answer (stale-cache
 * rung); the difference is the open store breaker's cost over a query that needs no store. Also times `run()` on a
 * closed and an open breaker in-process. Prints figures; asserts nothing.
 */
import { randomUUID } from 'node:crypto';
import { DependencyBreaker } from '../lib/resilience/breakers.js';
import { answerQueryWorkflow } from '../workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../test/support/ragline.js';
import { startTestTemporal } from '../test/support/temporal.js';
import { percentile } from './support.js';

export async function run(args: string[]): Promise<void> {
  const nArg = args.indexOf('--n');
  const n = nArg >= 0 ? Number(args[nArg + 1]) : 200;

  const breaker = new DependencyBreaker('llm', { failureRatio: 0.5, window: 20, minCalls: 10, openMs: 60_000 });
  const calls = 100_000;
  let started = performance.now();
  for (let i = 0; i < calls; i++) await breaker.run(() => Promise.resolve(i));
  const closedUs = ((performance.now() - started) * 1000) / calls;
  const held = breaker.isolate();
  started = performance.now();
  for (let i = 0; i < calls; i++) await breaker.run(() => Promise.resolve(i)).catch(() => undefined);
  const openUs = ((performance.now() - started) * 1000) / calls;
  held.dispose();

  const env = await startTestTemporal();
  const extractiveOnly = await startRagline({ env });
  const openLlm = await startRagline({
    env,
    overrides: {
      generator: {
        model: 'unreachable-llm',
        generate: () => Promise.reject(new Error('not reached while the breaker is open')),
        health: async () => ({ ok: false, latencyMs: 0 }),
      },
    },
  });
  const openStore = await startRagline({ env });
  openLlm.runtime.breakers?.llm.isolate();
  await extractiveOnly.ingest([SAMPLE_CORPUS]);
  await openLlm.ingest([SAMPLE_CORPUS]);
  await openStore.ingest([SAMPLE_CORPUS]);
  const questions = ['How do I reset my password?', 'What are the API rate limits?', 'How do I rotate an API key?'];
  const ask = async (taskQueue: string, i: number, bypassCache = true) => {
    const t0 = performance.now();
    const result = await env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue,
      workflowId: `bench-${randomUUID()}`,
      args: [{ query: questions[i % questions.length] ?? '', options: bypassCache ? { bypassCache } : undefined }],
    });
    return { ms: performance.now() - t0, result };
  };
  // Good answers first: the cached ones for (c), the last good ones the open store's queries are served (d).
  for (let i = 0; i < questions.length; i++) {
    await ask(extractiveOnly.taskQueue, i, false);
    await ask(openStore.taskQueue, i, false);
  }
  openStore.runtime.breakers?.store.isolate();
  const a: number[] = [];
  const b: number[] = [];
  const c: number[] = [];
  const d: number[] = [];
  let circuitOpenAnswers = 0;
  let staleAnswers = 0;
  for (let i = -10; i < n; i++) {
    // Interleaved, so drift on a shared machine hits every variant alike.
    const x = await ask(extractiveOnly.taskQueue, i + 10);
    const y = await ask(openLlm.taskQueue, i + 10);
    const z = await ask(extractiveOnly.taskQueue, i + 10, false);
    const w = await ask(openStore.taskQueue, i + 10, false);
    if (i < 0) continue;
    a.push(x.ms);
    b.push(y.ms);
    c.push(z.ms);
    d.push(w.ms);
    if (y.result.fallbackReason === 'generation-failed' && y.result.model === 'extractive') circuitOpenAnswers += 1;
    if (w.result.fallbackReason === 'stale-cache') staleAnswers += 1;
  }
  await extractiveOnly.stop();
  await openLlm.stop();
  await openStore.stop();
  await env.teardown();
  const p50 = (xs: number[]) =>
    percentile(
      [...xs].sort((p, q) => p - q),
      50,
    );
  const figures = {
    queries: n,
    breakerRunClosedUs: Math.round(closedUs * 100) / 100,
    breakerRunOpenUs: Math.round(openUs * 100) / 100,
    extractiveOnlyP50Ms: Math.round(p50(a) * 100) / 100,
    llmBreakerOpenP50Ms: Math.round(p50(b) * 100) / 100,
    addedP50Ms: Math.round((p50(b) - p50(a)) * 100) / 100,
    circuitOpenAnswers,
    cacheHitP50Ms: Math.round(p50(c) * 100) / 100,
    storeBreakerOpenP50Ms: Math.round(p50(d) * 100) / 100,
    storeAddedP50Ms: Math.round((p50(d) - p50(c)) * 100) / 100,
    staleAnswers,
  };
  console.log(
    `breaker.run: ${figures.breakerRunClosedUs} µs closed, ${figures.breakerRunOpenUs} µs open (refusal)\n` +
      `query p50 over ${n} uncached queries: extractive only ${figures.extractiveOnlyP50Ms} ms, LLM breaker open ` +
      `${figures.llmBreakerOpenP50Ms} ms → added ${figures.addedP50Ms} ms (${circuitOpenAnswers} answered via CircuitOpen)\n` +
      `query p50 over ${n} cached questions: cache hit ${figures.cacheHitP50Ms} ms, store breaker open ` +
      `${figures.storeBreakerOpenP50Ms} ms → added ${figures.storeAddedP50Ms} ms (${staleAnswers} served stale)`,
  );
  console.log(JSON.stringify(figures));
}
