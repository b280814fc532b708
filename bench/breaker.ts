/**
 * `npm run bench -- breaker [--n 200]`: what an open breaker costs a query. Runs the same uncached questions
 * (a) with no LLM configured (extractive answers, no generation activity) and (b) with an LLM whose breaker is held
 * open, so every query schedules the generation activity, gets CircuitOpen at once and answers extractively. The
 * difference of the medians is the open breaker's added latency. Also times `run()` on a closed and an open
 * breaker in-process. Prints figures; asserts nothing.
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
  openLlm.runtime.breakers?.llm.isolate();
  await extractiveOnly.ingest([SAMPLE_CORPUS]);
  await openLlm.ingest([SAMPLE_CORPUS]);
  const questions = ['How do I reset my password?', 'What are the API rate limits?', 'How do I rotate an API key?'];
  const ask = async (taskQueue: string, i: number) => {
    const t0 = performance.now();
    const result = await env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue,
      workflowId: `bench-${randomUUID()}`,
      args: [{ query: questions[i % questions.length] ?? '', options: { bypassCache: true } }],
    });
    return { ms: performance.now() - t0, result };
  };
  const a: number[] = [];
  const b: number[] = [];
  let circuitOpenAnswers = 0;
  for (let i = -10; i < n; i++) {
    // Interleaved, so drift on a shared machine hits both variants alike.
    const x = await ask(extractiveOnly.taskQueue, i + 10);
    const y = await ask(openLlm.taskQueue, i + 10);
    if (i < 0) continue;
    a.push(x.ms);
    b.push(y.ms);
    if (y.result.fallbackReason === 'generation-failed' && y.result.model === 'extractive') circuitOpenAnswers += 1;
  }
  await extractiveOnly.stop();
  await openLlm.stop();
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
  };
  console.log(
    `breaker.run: ${figures.breakerRunClosedUs} µs closed, ${figures.breakerRunOpenUs} µs open (refusal)\n` +
      `query p50 over ${n} uncached queries: extractive only ${figures.extractiveOnlyP50Ms} ms, LLM breaker open ` +
      `${figures.llmBreakerOpenP50Ms} ms → added ${figures.addedP50Ms} ms (${circuitOpenAnswers} answered via CircuitOpen)`,
  );
  console.log(JSON.stringify(figures));
}
