import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerGenerator, ChunkStore } from '../../lib/domain.js';
import { ErrorType } from '../../lib/errors.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import type { RuntimeOverrides } from '../../workers/runtime.js';
import { FALLBACK_BUDGET_MS, FALLBACK_MESSAGES, type QueryOptions } from '../../contracts/query.js';
import { answerQueryWorkflow, ingestDocumentsWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline, tempDir, type TestRagline } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';
import { waitUntil } from '../support/wait.js';

/** A store that can be taken down: every call fails (or hangs) the way an unreachable vector store does. */
function switchableStore(store: ChunkStore, state: { down: false | 'fail' | 'hang'; calls: number }): ChunkStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      if (property === 'health' || property === 'close') return value.bind(target);
      return (...args: unknown[]) => {
        if (state.down === false) return (value as (...a: unknown[]) => unknown).apply(target, args);
        state.calls += 1;
        // A hang that outlives any deadline, yet ends, so the worker can shut down after the test.
        if (state.down === 'hang')
          return new Promise((_, reject) => setTimeout(() => reject(new Error('read timed out')), 8000));
        return Promise.reject(new Error('connect ECONNREFUSED 10.0.0.7:6333'));
      };
    },
  });
}

function switchableGenerator(state: { down: boolean; calls: number }): AnswerGenerator {
  return {
    model: 'switchable-llm',
    async generate(request) {
      state.calls += 1;
      if (state.down) throw new Error('upstream https://llm.internal:8443 returned 503');
      return {
        answer: `From the docs [1]: ${request.chunks[0]?.title ?? ''}`,
        citations: [1],
        model: 'switchable-llm',
      };
    },
    async health() {
      return { ok: !state.down, latencyMs: 0 };
    },
  };
}

describe('resilience: breakers, deadline and the degradation ladder', () => {
  let env: TestWorkflowEnvironment;
  const running: TestRagline[] = [];

  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => {
    for (const r of running) await r.stop();
    await env?.teardown();
  });

  async function raglineWith(overrides: RuntimeOverrides, config: Record<string, string> = {}) {
    const ragline = await startRagline({ env, overrides, config });
    running.push(ragline);
    await ragline.ingest([SAMPLE_CORPUS]);
    return ragline;
  }

  const ask = async (ragline: TestRagline, query: string, options?: QueryOptions) => {
    const workflowId = `query-${randomUUID()}`;
    const result = await env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId,
      args: [{ query, options }],
    });
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    return { result, history };
  };

  type History = Awaited<ReturnType<typeof ask>>['history'];
  const scheduledActivities = (history: History) =>
    (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
  const patchMarkers = (history: History) =>
    (history.events ?? []).flatMap((e) => {
      const details = e.markerRecordedEventAttributes?.details;
      const id = details?.['patch-data']?.payloads?.[0]?.data;
      return id ? [JSON.parse(Buffer.from(id).toString()).id as string] : [];
    });

  const metricValue = async (ragline: TestRagline, name: string, labels: Record<string, string>) => {
    const metric = (await ragline.runtime.deps.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
    const found = metric?.values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
    return found?.value ?? 0;
  };

  it('opens the LLM breaker after its minimum calls, then falls back without calling the LLM; closes on recovery', async () => {
    const llm = { down: true, calls: 0 };
    const ragline = await raglineWith(
      { generator: switchableGenerator(llm) },
      { RAGLINE_BREAKER_LLM: 'minCalls=3,window=4,openMs=4000' },
    );
    const first = await ask(ragline, 'How do I reset my password?');
    expect(first.result.fallbackReason).toBe('generation-failed');
    // Three attempts of the retry policy: the third failure fills the breaker's minimum and opens it.
    expect(llm.calls).toBe(3);
    expect(ragline.runtime.breakers?.llm.state).toBe('open');

    const second = await ask(ragline, 'What are the API rate limits?');
    expect(llm.calls).toBe(3);
    expect(second.result.degraded).toBe(true);
    expect(second.result.fallbackReason).toBe('generation-failed');
    expect(second.result.rung).toBe('extractive');
    expect(second.result.model).toBe('extractive');
    expect(second.result.fallbackDetail).toBe(FALLBACK_MESSAGES['generation-failed']);
    // The cache lookup reported the LLM breaker refusing, so no generation activity was even scheduled: the
    // workflow went straight to the extractive fallback, behind its patch marker.
    expect(scheduledActivities(second.history)).toEqual(['retrieveChunks']);
    expect(patchMarkers(second.history)).toContain('breaker-shortcut-v1');
    expect(second.history.events?.some((e) => e.activityTaskFailedEventAttributes)).toBe(false);
    expect(await metricValue(ragline, 'rag_breaker_state', { dependency: 'llm' })).toBe(1);
    // The skipped call is counted as the refusal it would have been.
    expect(await metricValue(ragline, 'rag_breaker_rejected_total', { dependency: 'llm' })).toBe(1);
    // A query that needs no shortcut carries no marker: its commands are what they always were.
    expect(patchMarkers(first.history)).not.toContain('breaker-shortcut-v1');

    // Recovery: once the open period has passed, one probe goes through and closes it. Queries are retried until
    // one gets the LLM's answer; what is asserted is the order of states, not how long it took.
    llm.down = false;
    let recovered;
    for (let i = 0; i < 300 && !recovered; i += 1) {
      const { result } = await ask(ragline, `How do I rotate an API key? (${i})`);
      if (!result.degraded) recovered = result;
    }
    expect(recovered?.model).toBe('switchable-llm');
    expect(ragline.runtime.breakers?.llm.snapshot().transitions.map((t) => t.to)).toEqual(
      expect.arrayContaining(['open', 'half-open', 'closed']),
    );
    const states = ragline.runtime.breakers?.llm.snapshot().transitions.map((t) => t.to) ?? [];
    expect(states.indexOf('open')).toBeLessThan(states.lastIndexOf('half-open'));
    expect(states.lastIndexOf('half-open')).toBeLessThan(states.lastIndexOf('closed'));
    expect(await metricValue(ragline, 'rag_breaker_transitions_total', { dependency: 'llm', to: 'closed' })).toBe(1);
  });

  it('serves the last good answer, flagged stale, when the store is down; a new question gets the clear message', async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith({ store: switchableStore(await EmbeddedStore.open(await tempDir()), store) });
    const fresh = await ask(ragline, 'How do I reset my password?');
    expect(fresh.result.degraded).toBe(false);
    expect(fresh.result.rung).toBe('full');

    store.down = 'fail';
    const stale = await ask(ragline, 'how do I reset my password');
    expect(stale.result.degraded).toBe(true);
    expect(stale.result.fallbackReason).toBe('stale-cache');
    expect(stale.result.rung).toBe('stale-cache');
    expect(stale.result.degradedReasons).toEqual(['stale-cache']);
    expect(stale.result.answer).toBe(fresh.result.answer);
    expect(stale.result.sources.map((s) => s.docId)).toEqual(fresh.result.sources.map((s) => s.docId));
    expect(stale.result.staleSince).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(stale.result.cache.stale).toBe('hit');
    expect(JSON.stringify(stale.result)).not.toContain('10.0.0.7');

    const never = await ask(ragline, 'What are the API rate limits?');
    expect(never.result.fallbackReason).toBe('retrieval-unavailable');
    expect(never.result.rung).toBe('message');
    expect(never.result.cache.stale).toBe('miss');
    expect(never.result.fallbackDetail).toBe(FALLBACK_MESSAGES['retrieval-unavailable']);

    expect(await metricValue(ragline, 'rag_answers_by_rung_total', { rung: 'stale-cache' })).toBe(1);
    expect(await metricValue(ragline, 'rag_fallbacks_total', { reason: 'stale-cache' })).toBe(1);
    expect(await metricValue(ragline, 'rag_answers_by_rung_total', { rung: 'message' })).toBe(1);
  });

  it("never serves a deleted document's stale answer, even while the store is down", async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith({ store: switchableStore(await EmbeddedStore.open(await tempDir()), store) });
    const fresh = await ask(ragline, 'How do I reset my password?');
    const deleted = fresh.result.sources[0]!.docId;
    const other = await ask(ragline, 'What are the API rate limits?');
    expect(other.result.sources.map((s) => s.docId)).not.toContain(deleted);
    expect(await ragline.client.deleteDocuments([deleted])).toMatchObject({ deleted: [deleted] });

    store.down = 'fail';
    const after = await ask(ragline, 'How do I reset my password?');
    expect(after.result.cache.stale).toBe('miss');
    expect(after.result.rung).toBe('message');
    expect(after.result.sources).toEqual([]);
    // An answer that cited none of the deleted documents is still there for the outage.
    const kept = await ask(ragline, 'What are the API rate limits?');
    expect(kept.result.rung).toBe('stale-cache');
    expect(kept.result.answer).toBe(other.result.answer);
  });

  it("serves the stale answer after the tenant's topK was tuned: it is read under the key it was written with", async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith({ store: switchableStore(await EmbeddedStore.open(await tempDir()), store) });
    const params = ragline.runtime.deps.improvement.params;
    const current = await params.current('default');
    const tuned = current.params.topK === 3 ? 4 : 3;
    await params.apply('default', {
      params: { ...current.params, topK: tuned },
      actor: 'alice',
      action: 'apply',
      reason: 'tuned by the improvement loop',
    });
    const fresh = await ask(ragline, 'How do I reset my password?');
    expect(fresh.result.sources).toHaveLength(tuned);
    store.down = 'fail';
    const stale = await ask(ragline, 'How do I reset my password?');
    expect(stale.result.rung).toBe('stale-cache');
    expect(stale.result.answer).toBe(fresh.result.answer);
  });

  it('skips retrieval while the store breaker refuses: the stale answer or the message, at once', async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith(
      { store: switchableStore(await EmbeddedStore.open(await tempDir()), store) },
      { RAGLINE_BREAKER_STORE: 'minCalls=2,window=2,openMs=600000' },
    );
    const fresh = await ask(ragline, 'How do I reset my password?');
    expect(fresh.result.degraded).toBe(false);
    store.down = 'fail';
    // The first failing query's lookup and retrieval fill the window and open the breaker.
    const opening = await ask(ragline, 'What are the API rate limits?');
    expect(opening.result.fallbackReason).toBe('retrieval-unavailable');
    expect(ragline.runtime.breakers?.store.state).toBe('open');
    const callsWhenOpened = store.calls;

    const stale = await ask(ragline, 'How do I reset my password?');
    expect(stale.result.fallbackReason).toBe('stale-cache');
    expect(stale.result.rung).toBe('stale-cache');
    expect(stale.result.cache).toEqual({ result: 'error', stale: 'hit' });
    expect(stale.result.answer).toBe(fresh.result.answer);
    expect(scheduledActivities(stale.history)).toEqual([]);
    expect(patchMarkers(stale.history)).toContain('breaker-shortcut-v1');

    const message = await ask(ragline, 'How do I export my data?');
    expect(message.result.fallbackReason).toBe('retrieval-unavailable');
    expect(message.result.rung).toBe('message');
    expect(message.result.cache).toEqual({ result: 'error', stale: 'miss' });
    expect(scheduledActivities(message.history)).toEqual([]);
    // Neither query reached the store.
    expect(store.calls).toBe(callsWhenOpened);
  });

  it('bounds every retrieval attempt by what is left of the deadline when the store hangs', async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith(
      { store: switchableStore(await EmbeddedStore.open(await tempDir()), store) },
      { RAGLINE_BREAKERS: 'false' },
    );
    store.down = 'hang';
    const deadlineMs = 5000;
    const { result, history } = await ask(ragline, 'How do I reset my password?', { deadlineMs });
    expect(result.fallbackReason).toBe('retrieval-unavailable');
    const scheduled = history.events?.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'retrieveChunks',
    )?.activityTaskScheduledEventAttributes;
    const ms = (d: { seconds?: unknown; nanos?: number | null } | null | undefined) =>
      Number(d?.seconds ?? 0) * 1000 + Math.round((d?.nanos ?? 0) / 1e6);
    expect(ms(scheduled?.scheduleToCloseTimeout)).toBeLessThanOrEqual(deadlineMs - FALLBACK_BUDGET_MS);
    expect(ms(scheduled?.startToCloseTimeout)).toBeLessThanOrEqual(ms(scheduled?.scheduleToCloseTimeout));
    // A heartbeat timeout well inside the attempt's: an attempt on a worker that died is retried elsewhere soon.
    expect(ms(scheduled?.heartbeatTimeout)).toBeGreaterThan(0);
    expect(ms(scheduled?.heartbeatTimeout)).toBeLessThanOrEqual(Math.min(2000, ms(scheduled?.startToCloseTimeout)));
    expect(patchMarkers(history)).toContain('activity-heartbeat-v1');
    expect(history.events?.some((e) => e.activityTaskTimedOutEventAttributes)).toBe(true);
  });

  it('starts no remote generation with under 1.5 s of the deadline left: the extractive answer comes at once', async () => {
    const llm = { down: false, calls: 0 };
    const ragline = await raglineWith({ generator: switchableGenerator(llm) });
    // 3.499 s less the fallback's 2 s leaves under 1.5 s for generation however fast the lookup and retrieval were
    // (the rule is deterministic, not a race), and the most a loaded machine can give retrieval (about 1.5 s).
    const { result, history } = await ask(ragline, 'How do I reset my password?', { deadlineMs: 3499 });
    expect(result.fallbackReason).toBe('deadline');
    expect(result.rung).toBe('extractive');
    expect(result.model).toBe('extractive');
    expect(scheduledActivities(history)).toEqual(['retrieveChunks']);
    expect(llm.calls).toBe(0);
  });

  it('keeps ingesting through an open store breaker: the batch waits for the probe instead of failing', async () => {
    const store = { down: false as false | 'fail' | 'hang', calls: 0 };
    const ragline = await raglineWith(
      { store: switchableStore(await EmbeddedStore.open(await tempDir()), store) },
      { RAGLINE_BREAKER_STORE: 'minCalls=2,window=2,openMs=3000' },
    );
    store.down = 'fail';
    await ask(ragline, 'How do I reset my password?', { bypassCache: true });
    expect(ragline.runtime.breakers?.store.state).toBe('open');

    const docs = await tempDir();
    const names = ['breaker-alpha', 'breaker-bravo', 'breaker-charlie'];
    for (const name of names) {
      await fs.writeFile(path.join(docs, `${name}.md`), `# Zanzibar ${name}\n\nThe ${name} runbook covers quokkas.\n`);
    }
    const handle = await env.client.workflow.start(ingestDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `ingest-${randomUUID()}`,
      args: [{ paths: [docs] }],
    });
    // The store is brought back only once ingestion has been turned away at least once, so the batch surely met
    // the open breaker (or a failing probe that re-opened it).
    const failedAttempts = async (type: string) =>
      metricValue(ragline, 'rag_activity_failures_total', { activity: 'ingestManifestBatch', type });
    const refused = await waitUntil(
      'a failed ingestManifestBatch attempt (Unavailable or CircuitOpen) while the store is down',
      async () => ({
        retryable: await failedAttempts(ErrorType.Unavailable),
        final: await failedAttempts(ErrorType.CircuitOpen),
      }),
      (counts) => counts.retryable + counts.final > 0,
      { intervalMs: 50 },
    );
    // A non-retryable CircuitOpen here is the defect: the run fails and its documents are never written.
    expect(refused.final).toBe(0);
    store.down = false;

    const result = await handle.result();
    expect(result.added).toBe(names.length);
    expect(result.rejected).toBe(0);
    const states = ragline.runtime.breakers?.store.snapshot().transitions.map((t) => t.to) ?? [];
    expect(states.indexOf('open')).toBeLessThan(states.lastIndexOf('half-open'));
    expect(states.lastIndexOf('half-open')).toBeLessThan(states.lastIndexOf('closed'));
    const found = await ask(ragline, 'zanzibar quokkas breaker-bravo runbook', { bypassCache: true });
    expect(found.result.sources.map((s) => s.docId)).toContainEqual(expect.stringContaining('breaker-bravo'));
  });
});
