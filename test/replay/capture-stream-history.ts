/**
 * Captures a streamed query (`options.stream`, as `askStream` and `POST /v1/query?stream=true` start it) answered by
 * a streaming LLM whose first attempt breaks mid-stream: `npx tsx test/replay/capture-stream-history.ts`. Streaming
 * adds no command (tokens leave through the activity's side channel), so this history replays beside the others.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { startFakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, startRagline } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const fake = await startFakeOpenAI();
const ragline = await startRagline({ config: { OPENAI_BASE_URL: fake.baseURL, OPENAI_MODEL: 'fake-model' } });
await ragline.ingest([SAMPLE_CORPUS]);
fake.script({ kind: 'stream-break', afterChunks: 2 });
const workflowId = `query-${randomUUID()}`;
await ragline.env.client.workflow.execute(answerQueryWorkflow, {
  taskQueue: ragline.taskQueue,
  workflowId,
  args: [{ query: 'What are the API rate limits?', options: { stream: true } }],
});
const history = await ragline.env.client.workflow.getHandle(workflowId).fetchHistory();
const file = path.join(out, 'answer-query-streamed-retry.json');
try {
  await fs.writeFile(file, historyToJSON(history), { flag: 'wx' });
  console.log(`saved ${path.basename(file)} (${history.events?.length} events, ${fake.streamedCalls} streamed calls)`);
} catch (error) {
  if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  console.log(`kept the existing ${path.basename(file)}`);
}
await ragline.stop();
await fake.close();
