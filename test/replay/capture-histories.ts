/**
 * Captures workflow histories from real runs on a dev server, for the replay tests:
 * `npx tsx test/replay/capture-histories.ts`. Re-run it when a workflow changes on purpose (behind `patched()`
 * for histories already in the wild), and commit the new files beside the old ones. A history already saved is
 * never overwritten: old histories are what proves new code still replays runs recorded by older code (files
 * named `<commit>-<name>.json` were recorded by that commit's code).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow, floorWorkflow, ingestDocumentsWorkflow } from '../../bench/workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const ragline = await startRagline();
const { client } = ragline.env;
const save = async (name: string, history: Parameters<typeof historyToJSON>[0]) => {
  try {
    await fs.writeFile(path.join(out, `${name}.json`), historyToJSON(history), { flag: 'wx' });
    console.log(`saved ${name}.json (${history.events?.length} events)`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    console.log(`kept the existing ${name}.json`);
  }
};
const run = async (name: string, start: () => Promise<{ workflowId: string; runId?: string }>) => {
  const { workflowId, runId } = await start();
  await save(name, await client.workflow.getHandle(workflowId, runId).fetchHistory());
};
const opts = (prefix: string) => ({ taskQueue: ragline.taskQueue, workflowId: `${prefix}-${randomUUID()}` });

await run('ingest-sample-corpus', async () => {
  const o = opts('ingest');
  await client.workflow.execute(ingestDocumentsWorkflow, { ...o, args: [{ paths: [SAMPLE_CORPUS], batchSize: 20 }] });
  return o;
});
// Ingestion by manifest and cursor (patch 'ingest-manifest-cursor'): the first run ends in a continue-as-new.
await run('ingest-manifest-continued', async () => {
  const o = opts('ingest');
  const handle = await client.workflow.start(ingestDocumentsWorkflow, {
    ...o,
    args: [{ paths: [SAMPLE_CORPUS], tenant: 'manifest', batchSize: 20, batchesPerRun: 2 }],
  });
  await handle.result();
  return { workflowId: o.workflowId, runId: handle.firstExecutionRunId };
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
await save('answer-query-generation-fallback', await failing.env.client.workflow.getHandle(fallbackId).fetchHistory());
await failing.stop();
