/**
 * Captures the history of an evaluation run that took an Update and continued as new, for the replay test:
 * `npx tsx test/replay/capture-evaluation-history.ts`. Writes new files beside the others; never overwrite one that
 * is checked in (give a changed workflow's history a new name).
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { SAMPLE_CORPUS, startRagline, tempDir } from '../support/ragline.js';

const out = path.join(import.meta.dirname, 'histories');
const name = process.argv[2] ?? 'evaluation-continued-as-new';
const target = path.join(out, `${name}.json`);
if (await fs.stat(target).catch(() => undefined)) throw new Error(`${target} exists; pass another name`);

const ragline = await startRagline();
await ragline.ingest([SAMPLE_CORPUS]);
const dir = await tempDir('ragline-capture-');
const dataset = path.join(dir, 'replay-set.jsonl');
await fs.copyFile(path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl'), dataset);
const evals = ragline.client.evaluation;
const started = await evals.start({ dataset, settings: { intervalMs: 3_600_000, batchSize: 3 }, maxBatchesPerRun: 2 });
const status = () => evals.status('default', 'replay-set');
while ((await status()).batches < 1) await new Promise((r) => setTimeout(r, 100));
await evals.configure('default', 'replay-set', { intervalMs: 60_000, batchSize: 2 });
await evals.propose('default', 'replay-set', {
  source: 'capture',
  items: [{ id: 'p1', question: 'How do I rotate an API key?', relevant: { 'api-keys': 1 } }],
});
await evals.runNow('default', 'replay-set');
while ((await status()).continuedAsNew < 1) await new Promise((r) => setTimeout(r, 100));
const history = await ragline.env.client.workflow.getHandle(started.workflowId, started.runId).fetchHistory();
await fs.writeFile(target, historyToJSON(history));
console.log(`saved ${name}.json (${history.events?.length} events)`);
await ragline.env.client.workflow.getHandle(started.workflowId).terminate('captured');
await ragline.stop();
await fs.rm(dir, { recursive: true, force: true });
