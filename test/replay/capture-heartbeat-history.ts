/**
 * Captures a query whose retrieval and generation are scheduled with a heartbeat timeout, behind
 * `patched('activity-heartbeat-v1')`; older histories stay as they were: `npx tsx test/replay/capture-heartbeat-history.ts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const ragline = await startRagline();
await ragline.ingest([SAMPLE_CORPUS]);
const workflowId = `query-${randomUUID()}`;
await ragline.env.client.workflow.execute(answerQueryWorkflow, {
  taskQueue: ragline.taskQueue,
  workflowId,
  args: [{ query: 'How do I reset my password?' }],
});
const history = await ragline.env.client.workflow.getHandle(workflowId).fetchHistory();
await fs.writeFile(
  path.join(import.meta.dirname, 'histories', 'answer-query-heartbeat-miss.json'),
  historyToJSON(history),
);
console.log(`saved answer-query-heartbeat-miss.json (${history.events?.length} events)`);
await ragline.stop();
