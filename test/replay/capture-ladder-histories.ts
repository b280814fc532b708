/**
 * Captures the degradation-ladder branches added behind `patched('deadline-ladder-v1')`, beside the older histories
 * (which stay as they were): `npx tsx test/replay/capture-ladder-histories.ts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import type { ChunkStore } from '../../lib/domain.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline, tempDir } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const state = { down: false };
const base = await EmbeddedStore.open(await tempDir());
const store = new Proxy(base, {
  get(target, property, receiver) {
    const value: unknown = Reflect.get(target, property, receiver);
    if (typeof value !== 'function' || property === 'health' || property === 'close') {
      return typeof value === 'function' ? value.bind(target) : value;
    }
    return (...args: unknown[]) =>
      state.down
        ? Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6333'))
        : (value as (...a: unknown[]) => unknown).apply(target, args);
  },
}) as ChunkStore;
let llmCalls = 0;
const ragline = await startRagline({
  overrides: {
    store,
    generator: {
      model: 'flaky-llm',
      async generate(request) {
        llmCalls += 1;
        if (llmCalls > 1) throw new Error('upstream returned 503');
        return { answer: `See ${request.chunks[0]?.title ?? ''} [1].`, citations: [1], model: 'flaky-llm' };
      },
      health: async () => ({ ok: true, latencyMs: 0 }),
    },
  },
  config: { RAGLINE_BREAKER_LLM: 'minCalls=3,window=3,openMs=600000' },
});
await ragline.ingest([SAMPLE_CORPUS]);
const save = async (name: string, query: string) => {
  const workflowId = `query-${randomUUID()}`;
  await ragline.env.client.workflow.execute(answerQueryWorkflow, {
    taskQueue: ragline.taskQueue,
    workflowId,
    args: [{ query }],
  });
  const history = await ragline.env.client.workflow.getHandle(workflowId).fetchHistory();
  await fs.writeFile(path.join(out, `${name}.json`), historyToJSON(history));
  console.log(`saved ${name}.json (${history.events?.length} events)`);
};

// A good answer first, so the stale rung has something to serve.
await save('answer-query-ladder-miss', 'How do I reset my password?');
// Three failed attempts open the LLM breaker; the next query's attempt fails at once with CircuitOpen.
await save('answer-query-ladder-generation-fallback', 'What are the API rate limits?');
await save('answer-query-circuit-open', 'How do I enable two-factor authentication?');
state.down = true;
await save('answer-query-stale-cache', 'How do I reset my password?');
await save('answer-query-retrieval-unavailable', 'How do I export my data?');
await ragline.stop();
