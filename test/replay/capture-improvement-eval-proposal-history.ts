/**
 * Captures a history of the improvement workflow whose cycle sends a well-rated logged question to the evaluation
 * workflow's proposal path (behind `patched('improvement-eval-proposals')`) and then continues as new:
 * `npx tsx test/replay/capture-improvement-eval-proposal-history.ts`. Writes a new file beside the others; never
 * overwrites one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { improvementWorkflowId } from '../../contracts/improvement.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const file = path.join(import.meta.dirname, 'histories', 'improvement-eval-proposal.json');
if (await fs.stat(file).catch(() => undefined)) throw new Error(`${file} exists; histories are never overwritten`);

const evalSet = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');
const ragline = await startRagline();
const { client } = ragline.env;
const tenant = 'replay';
await ragline.ingest([SAMPLE_CORPUS], tenant);
await ragline.client.evaluation.start({
  tenant,
  dataset: evalSet,
  settings: { intervalMs: 3_600_000, batchSize: 1 },
});
const { improvement } = ragline.client;
const handle = await client.workflow.start('improvementWorkflow', {
  taskQueue: ragline.taskQueue,
  workflowId: improvementWorkflowId(tenant),
  args: [{ tenant, maxCyclesPerRun: 1, settings: { intervalMs: 3_600_000, evalSet, approvers: ['alice'] } }],
});
const answer = await client.workflow.execute(answerQueryWorkflow, {
  taskQueue: ragline.taskQueue,
  workflowId: `query-${tenant}-${randomUUID()}`,
  args: [{ query: 'How do I rotate an API key?', tenant }],
});
await improvement.feedback({ queryId: answer.queryId, score: 5 });
await improvement.runNow(tenant);
let history;
for (;;) {
  history = await client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
  if (history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const sent = history.events?.some(
  (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'proposeEvalItems',
);
if (!sent) throw new Error('the cycle sent no evaluation-set proposal');
await fs.writeFile(file, historyToJSON(history));
console.log(`saved ${path.basename(file)} (${history.events?.length} events)`);
await client.workflow.getHandle(improvementWorkflowId(tenant)).terminate('captured');
await ragline.stop();
