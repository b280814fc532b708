/**
 * Captures the branches added behind `patched('breaker-shortcut-v1')`: a query whose cache lookup reported the LLM
 * or the store breaker refusing, so the workflow skipped that activity and took its fallback at once. Older
 * histories stay as they were: `npx tsx test/replay/capture-breaker-shortcut-histories.ts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const ragline = await startRagline({
  overrides: {
    generator: {
      model: 'breaker-llm',
      async generate(request) {
        return { answer: `See ${request.chunks[0]?.title ?? ''} [1].`, citations: [1], model: 'breaker-llm' };
      },
      health: async () => ({ ok: true, latencyMs: 0 }),
    },
  },
});
await ragline.ingest([SAMPLE_CORPUS]);
const save = async (name: string | undefined, query: string) => {
  const workflowId = `query-${randomUUID()}`;
  const result = await ragline.env.client.workflow.execute(answerQueryWorkflow, {
    taskQueue: ragline.taskQueue,
    workflowId,
    args: [{ query }],
  });
  if (name === undefined) return;
  const history = await ragline.env.client.workflow.getHandle(workflowId).fetchHistory();
  await fs.writeFile(path.join(out, `${name}.json`), historyToJSON(history));
  console.log(`saved ${name}.json (${history.events?.length} events, rung ${result.rung})`);
};

// A good answer first, so the stale rung has something to serve.
await save(undefined, 'How do I reset my password?');
const llm = ragline.runtime.breakers?.llm.isolate();
await save('answer-query-breaker-shortcut-llm', 'What are the API rate limits?');
llm?.dispose();
ragline.runtime.breakers?.store.isolate();
await save('answer-query-breaker-shortcut-stale', 'How do I reset my password?');
await save('answer-query-breaker-shortcut-message', 'How do I export my data?');
await ragline.stop();
