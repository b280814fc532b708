/**
 * Captures workflow histories from real runs on a dev server, for the replay tests:
 * `npx tsx test/replay/capture-histories.ts`. Re-run it when a workflow changes on purpose (behind `patched()`
 * for histories already in the wild), and commit the new files beside the old ones.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow, floorWorkflow, ingestDocumentsWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const ragline = await startRagline();
const { client } = ragline.env;
const run = async (name: string, start: () => Promise<{ workflowId: string }>) => {
  const { workflowId } = await start();
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  await fs.writeFile(path.join(out, `${name}.json`), historyToJSON(history));
  console.log(`saved ${name}.json (${history.events?.length} events)`);
};
const opts = (prefix: string) => ({ taskQueue: ragline.taskQueue, workflowId: `${prefix}-${randomUUID()}` });

await run('ingest-sample-corpus', async () => {
  const o = opts('ingest');
  await client.workflow.execute(ingestDocumentsWorkflow, { ...o, args: [{ paths: [SAMPLE_CORPUS], batchSize: 20 }] });
  return o;
});
await run('answer-query-miss', async () => {
  const o = opts('query');
  await client.workflow.execute(answerQueryWorkflow, { ...o, args: [{ query: 'How do I reset my password?' }] });
  return o;
});
await run('answer-query-hit', async () => {
  const o = opts('query');
  await client.workflow.execute(answerQueryWorkflow, { ...o, args: [{ query: 'How do I reset my password?' }] });
  return o;
});
await run('floor', async () => {
  const o = opts('floor');
  await client.workflow.execute(floorWorkflow, o);
  return o;
});
await ragline.stop();

// The fallback branch: a generator that always fails, so the history records three attempts and the extractive
// answer that followed.
const failing = await startRagline({
  overrides: {
    generator: {
      model: 'broken-llm',
      generate: () => Promise.reject(new Error('upstream returned 503')),
      health: async () => ({ ok: false, latencyMs: 0 }),
    },
  },
});
await failing.env.client.workflow.execute(ingestDocumentsWorkflow, {
  taskQueue: failing.taskQueue,
  workflowId: `ingest-${randomUUID()}`,
  args: [{ paths: [SAMPLE_CORPUS] }],
});
const fallbackId = `query-${randomUUID()}`;
await failing.env.client.workflow.execute(answerQueryWorkflow, {
  taskQueue: failing.taskQueue,
  workflowId: fallbackId,
  args: [{ query: 'What are the API rate limits?' }],
});
const fallbackHistory = await failing.env.client.workflow.getHandle(fallbackId).fetchHistory();
await fs.writeFile(path.join(out, 'answer-query-generation-fallback.json'), historyToJSON(fallbackHistory));
console.log(`saved answer-query-generation-fallback.json (${fallbackHistory.events?.length} events)`);
await failing.stop();
