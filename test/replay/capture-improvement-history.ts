/**
 * Captures a history of the improvement workflow that holds a hand-set parameter Update, a cycle that proposes a
 * change, an approval Update that applies it, a second cycle and a continue-as-new:
 * `npx tsx test/replay/capture-improvement-history.ts`. Writes a new file beside the others; never overwrites one.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { improvementWorkflowId } from '../../contracts/improvement.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const file = path.join(import.meta.dirname, 'histories', 'improvement-approval.json');
if (await fs.stat(file).catch(() => undefined)) throw new Error(`${file} exists; histories are never overwritten`);

const ragline = await startRagline();
const { client } = ragline.env;
const tenant = 'replay';
await ragline.ingest([SAMPLE_CORPUS], tenant);
const { improvement } = ragline.client;
const handle = await client.workflow.start('improvementWorkflow', {
  taskQueue: ragline.taskQueue,
  workflowId: improvementWorkflowId(tenant),
  args: [
    {
      tenant,
      maxCyclesPerRun: 2,
      settings: {
        intervalMs: 3_600_000,
        evalSet: path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl'),
        approvers: ['alice'],
        approvalTtlMs: 3_600_000,
        autoApplyScale: 0,
      },
    },
  ],
});
const waitForCycles = async (n: number) => {
  while ((await improvement.status(tenant)).cycles < n) await new Promise((resolve) => setTimeout(resolve, 100));
};
await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
await improvement.runNow(tenant);
await waitForCycles(1);
const [proposal] = (await improvement.status(tenant)).pending;
if (!proposal) throw new Error('the cycle proposed nothing');
await improvement.approve(tenant, proposal.id, 'alice', 'measured gain');
await improvement.runNow(tenant);
// The second cycle ends the run with a continue-as-new; the first run's history is complete once it has.
let history;
for (;;) {
  history = await client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId).fetchHistory();
  if (history.events?.some((e) => e.workflowExecutionContinuedAsNewEventAttributes)) break;
  await new Promise((resolve) => setTimeout(resolve, 100));
}
await fs.writeFile(file, historyToJSON(history));
console.log(`saved ${path.basename(file)} (${history.events?.length} events)`);
await handle.terminate('captured');
await ragline.stop();
