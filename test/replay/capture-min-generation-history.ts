/**
 * Captures a query left with under 1.5 s for generation, which answers extractively without scheduling it, behind
 * `patched('min-remote-generation-v1')`; older histories stay as they were:
 * `npx tsx test/replay/capture-min-generation-history.ts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const ragline = await startRagline({
  overrides: {
    generator: {
      model: 'unhurried-llm',
      async generate(request) {
        return { answer: `See ${request.chunks[0]?.title ?? ''} [1].`, citations: [1], model: 'unhurried-llm' };
      },
      health: async () => ({ ok: true, latencyMs: 0 }),
    },
  },
});
await ragline.ingest([SAMPLE_CORPUS]);
const workflowId = `query-${randomUUID()}`;
const result = await ragline.env.client.workflow.execute(answerQueryWorkflow, {
  taskQueue: ragline.taskQueue,
  workflowId,
  args: [{ query: 'How do I reset my password?', options: { deadlineMs: 3000 } }],
});
const history = await ragline.env.client.workflow.getHandle(workflowId).fetchHistory();
const name = 'answer-query-min-remote-generation.json';
await fs.writeFile(path.join(import.meta.dirname, 'histories', name), historyToJSON(history));
console.log(`saved ${name} (${history.events?.length} events, ${result.fallbackReason})`);
await ragline.stop();
