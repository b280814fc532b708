/**
 * Captures a reindex of the sample corpus (indexed lexically, then re-embedded by the fake OpenAI server's
 * embeddings) whose first run continues as new after two batches: `npx tsx test/replay/capture-reindex-history.ts`.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { startFakeOpenAI } from '../support/fake-openai.js';
import { SAMPLE_CORPUS, startRagline, tempDir } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';

const env = await startTestTemporal();
const fake = await startFakeOpenAI();
const dataDir = await tempDir('ragline-capture-reindex-');
const lexical = await startRagline({ env, config: { RAGLINE_DATA_DIR: dataDir } });
await lexical.ingest([SAMPLE_CORPUS]);
await lexical.stop();
const ragline = await startRagline({
  env,
  config: {
    RAGLINE_DATA_DIR: dataDir,
    OPENAI_EMBEDDING_MODEL: 'model-b',
    OPENAI_EMBEDDING_DIMENSIONS: '16',
    RAGLINE_EMBEDDING_URL: fake.baseURL,
  },
});
// Started by hand with batchesPerRun 2, so its first run continues as new: that run's history is the one kept.
const workflowId = `reindex-embeddings-default-replay`;
const first = await env.client.workflow.start('reindexEmbeddingsWorkflow', {
  taskQueue: ragline.taskQueue,
  workflowId,
  args: [{ tenant: 'default', batchChunks: 40, batchesPerRun: 2 }],
});
await env.client.workflow.getHandle(workflowId).result();
const history = await env.client.workflow.getHandle(workflowId, first.firstExecutionRunId).fetchHistory();
await fs.writeFile(path.join(import.meta.dirname, 'histories', 'reindex-embeddings.json'), historyToJSON(history));
console.log(`saved reindex-embeddings.json (${history.events?.length} events)`);
await ragline.stop();
await fake.close();
await env.teardown();
await fs.rm(dataDir, { recursive: true, force: true });
