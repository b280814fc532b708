import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { InvalidInputError } from '../../lib/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvaluationClient } from '../../client/evaluation-client.js';
import { EvalSetError, loadEvalSet } from '../../lib/eval/dataset.js';
import { loadTenantEvalSet, overlayFile } from '../../lib/eval/overlay.js';
import { evaluateQuery } from '../../lib/retrieval/ir-metrics.js';
import type { AnswerQueryResult } from '../../contracts/query.js';
import type { EvaluationStatus } from '../../contracts/evaluation.js';
import { deleteDocumentsWorkflow } from '../../workflows/index.js';
import { createWorker } from '../../workers/runtime.js';
import { SAMPLE_CORPUS, startRagline, tempDir, workflowBundle, type TestRagline } from '../support/ragline.js';
import { waitUntil } from '../support/wait.js';

const GROUND_TRUTH = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');
const TENANT = 'default';

/** A webhook receiver that refuses its first delivery, so the retry is exercised. */
async function startWebhook() {
  const received: Array<{ body: Record<string, unknown>; key: string | undefined }> = [];
  let requests = 0;
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => (text += chunk.toString()));
    req.on('end', () => {
      requests += 1;
      if (requests === 1) {
        res.writeHead(503).end();
        return;
      }
      received.push({
        body: JSON.parse(text) as Record<string, unknown>,
        key: req.headers['idempotency-key'] as string,
      });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`,
    received,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('evaluation workflows', () => {
  let ragline: TestRagline;
  let evals: EvaluationClient;
  let webhook: Awaited<ReturnType<typeof startWebhook>>;
  let dir: string;

  beforeAll(async () => {
    webhook = await startWebhook();
    ragline = await startRagline({ config: { RAGLINE_EVAL_WEBHOOK_URL: webhook.url } });
    await ragline.ingest([SAMPLE_CORPUS]);
    evals = ragline.client.evaluation;
    dir = await tempDir('ragline-eval-');
  });
  afterAll(async () => {
    await ragline?.stop();
    await webhook?.close();
    if (dir) await fs.rm(dir, { recursive: true, force: true });
  });

  /** A copy of the ground truth under another set name, so each test has its own workflow id. */
  const copySet = async (name: string) => {
    const file = path.join(dir, `${name}.jsonl`);
    await fs.copyFile(GROUND_TRUTH, file);
    return file;
  };

  const waitForStatus = (setName: string, until: (s: EvaluationStatus) => boolean) =>
    waitUntil(
      `a status of set ${setName} that satisfies ${until.toString()}`,
      () => evals.status(TENANT, setName),
      until,
    );

  const recordedMetric = async (name: string) => ragline.runtime.deps.metrics.registry.getSingleMetricAsString(name);

  it('scores a one-off run exactly as a direct computation over the same answers', async () => {
    const progress: number[] = [];
    const result = await evals.runOnce({
      dataset: GROUND_TRUTH,
      limit: 12,
      onProgress: (p) => progress.push(p.done),
    });
    expect(result.setName).toBe('sample-corpus');
    expect(result.observations).toHaveLength(12);
    expect(result.scores.samples).toBe(12);

    // Recompute from the query workflows' own results with ir-metrics, independently of lib/eval/scores.ts.
    const set = await loadEvalSet(GROUND_TRUTH);
    const sums = { precision: 0, recall: 0, ndcg: 0, mrr: 0 };
    for (const [i, observation] of result.observations.entries()) {
      const answer = (await ragline.env.client.workflow.getHandle(observation.queryId!).result()) as AnswerQueryResult;
      expect(answer.cache.result).toBe('bypass');
      const item = set.items[i]!;
      expect(observation.itemId).toBe(item.id);
      const docs: string[] = [];
      for (const source of answer.sources) if (!docs.includes(source.docId)) docs.push(source.docId);
      const scores = new Map(docs.map((docId, rank) => [docId, 100 - rank]));
      const judged = new Map(Object.entries(item.relevant));
      const at5 = evaluateQuery(judged, scores, 5);
      const at10 = evaluateQuery(judged, scores, 10);
      sums.precision += at5.precision;
      sums.recall += at5.recall;
      sums.ndcg += at10.ndcg;
      sums.mrr += at10.mrr;
    }
    expect(result.scores.k).toBe(5);
    expect(result.scores.precision).toBeCloseTo(sums.precision / 12, 12);
    expect(result.scores.recall).toBeCloseTo(sums.recall / 12, 12);
    expect(result.scores.ndcg10).toBeCloseTo(sums.ndcg / 12, 12);
    expect(result.scores.mrr10).toBeCloseTo(sums.mrr / 12, 12);
    expect(result.scores.ndcg10).toBeGreaterThan(0.5);
    expect(progress.every((done, i) => i === 0 || done >= progress[i - 1]!)).toBe(true);
  });

  it('reports relevant documents the corpus does not hold, and still evaluates', async () => {
    const file = path.join(dir, 'ghosts.jsonl');
    await fs.writeFile(
      file,
      [
        JSON.stringify({ id: 'g1', query: 'How do I reset my password?', relevant: ['password-reset', 'ghost-doc'] }),
        JSON.stringify({ id: 'g2', query: 'How do I set up webhooks?', relevant: ['webhooks'] }),
      ].join('\n'),
    );
    const result = await evals.runOnce({ dataset: file });
    expect(result.unknownDocIds).toEqual(['ghost-doc']);
    expect(result.scores.samples).toBe(2);
    expect(result.scores.recall).toBeLessThan(1);
  });

  it('refuses an empty evaluation set before any workflow starts', async () => {
    const file = path.join(dir, 'empty-set.jsonl');
    await fs.writeFile(file, '{"id": "x", "query": "no judgements"}\nnot json\n');
    const failure = await evals.start({ dataset: file }).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(EvalSetError);
    expect((failure as EvalSetError).problems.map((p) => p.line)).toEqual([1, 2]);
    await expect(evals.handle(TENANT, 'empty-set').describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
  });

  it('runs batches on demand, refuses a zero interval, pauses, resumes and continues as new with its state', async () => {
    const dataset = await copySet('control');
    const started = await evals.start({
      dataset,
      settings: { intervalMs: 3_600_000, batchSize: 5 },
      maxBatchesPerRun: 2,
    });
    expect(started).toMatchObject({ workflowId: 'eval:default:control', started: true });
    // Starting again reuses the running workflow.
    expect((await evals.start({ dataset })).started).toBe(false);

    // The first batch runs at once; later ones only on request while the interval is an hour.
    const first = await waitForStatus('control', (s) => s.batches === 1 && s.phase === 'waiting');
    expect(first.last?.samples).toBe(5);

    const refused = await evals.configure(TENANT, 'control', { intervalMs: 0 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(InvalidInputError);
    expect((refused as Error).message).toMatch(/^intervalMs must be an integer from 1000 to \d+, got 0$/);
    expect((await evals.status(TENANT, 'control')).settings.intervalMs).toBe(3_600_000);
    // A refused Update never reaches the history.
    const history = await ragline.env.client.workflow.getHandle('eval:default:control').fetchHistory();
    expect(history.events?.some((e) => e.workflowExecutionUpdateAcceptedEventAttributes)).toBe(false);

    await evals.runNow(TENANT, 'control');
    // Batch 2 is the run's last: the workflow continues as new, carrying its state.
    const afterCan = await waitForStatus('control', (s) => s.batches === 2 && s.continuedAsNew === 1);
    expect(afterCan.history.map((h) => h.batch)).toEqual([1, 2]);
    expect(afterCan.questions).toBe(10);
    expect(afterCan.baseline.batches).toBe(2);
    const current = await ragline.env.client.workflow.getHandle('eval:default:control').describe();
    expect(current.runId).not.toBe(started.runId);

    await evals.pause(TENANT, 'control');
    expect(await evals.configure(TENANT, 'control', { intervalMs: 1000 })).toEqual({ intervalMs: 1000, batchSize: 5 });
    const paused = await waitForStatus('control', (s) => s.paused && s.phase === 'paused');
    expect(paused.batches).toBe(2);
    expect(paused.nextBatchAt).toBeUndefined();
    // Run-now is an explicit request, honoured while paused; the workflow stays paused after it.
    await evals.runNow(TENANT, 'control');
    const ranWhilePaused = await waitForStatus('control', (s) => s.batches === 3 && s.phase === 'paused');
    expect(ranWhilePaused.paused).toBe(true);

    await evals.resume(TENANT, 'control');
    const resumed = await waitForStatus('control', (s) => s.batches >= 5);
    expect(resumed.paused).toBe(false);
    expect(resumed.continuedAsNew).toBeGreaterThanOrEqual(2);
    expect(resumed.questions).toBe(resumed.batches * 5);
    await ragline.env.client.workflow.getHandle('eval:default:control').terminate('test done');
  });

  it('fires exactly one alert when retrieval is made worse on purpose, and resolves it when repaired', async () => {
    const dataset = await copySet('alerting');
    const set = await loadEvalSet(dataset);
    await evals.start({ dataset, settings: { intervalMs: 3_600_000, batchSize: 10 } });
    const batch = async (n: number) => {
      if (n > 1) await evals.runNow(TENANT, 'alerting');
      return waitForStatus('alerting', (s) => s.batches === n && s.phase === 'waiting');
    };
    // Batches of ten questions vary; one below the threshold is a single breach, kept out of the baseline: no alert.
    let status = await batch(1);
    while (status.baseline.batches < 2) status = await batch(status.batches + 1);
    expect(status.firing).toEqual([]);
    expect(status.baseline.qualityMean).toBeGreaterThan(0.6);

    // Every document the set calls relevant goes; answers still come, but from the wrong documents.
    const relevant = [...new Set(set.items.flatMap((item) => Object.keys(item.relevant)))];
    await ragline.env.client.workflow.execute(deleteDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `delete-relevant-${Date.now()}`,
      args: [{ tenant: TENANT, docIds: relevant }],
    });
    // These questions have no healthy score yet, so the threshold rule decides: three bad batches in a row.
    const degradedFrom = status.batches + 1;
    for (let i = 0; i < 2; i++) {
      status = await batch(status.batches + 1);
      expect(status.firing).toEqual([]);
      expect(status.last!.quality).toBeLessThan(0.3);
    }
    status = await batch(status.batches + 1);
    expect(status.firing).toEqual(['quality']);
    const firedAt = degradedFrom + 2;
    expect(status.alerts.quality).toMatchObject({ firedAtBatch: firedAt, breaches: 3 });
    expect(status.alerts.quality.reason).toMatch(/^quality 0\.\d{3} below 0\.6$/);
    // Still bad: the alert keeps firing and is not announced again.
    expect((status = await batch(status.batches + 1)).firing).toEqual(['quality']);
    expect(await recordedMetric('rag_eval_alert_firing')).toMatch(/alert="quality"} 1/);

    await ragline.ingest([SAMPLE_CORPUS]);
    // It resolves only after two healthy batches in a row.
    expect((status = await batch(status.batches + 1)).firing).toEqual(['quality']);
    const repairedFrom = status.batches;
    while (status.firing.length > 0 && status.batches < repairedFrom + 8) status = await batch(status.batches + 1);
    expect(status.firing).toEqual([]);
    const resolvedAt = status.batches;
    expect(await recordedMetric('rag_eval_alert_firing')).toMatch(/alert="quality"} 0/);
    expect(await recordedMetric('rag_eval_alerts_total')).toMatch(/alert="quality",state="firing"} 1/);

    const deliveries = webhook.received.filter((r) => r.body.workflowId === 'eval:default:alerting');
    expect(deliveries.map((d) => [d.body.alert, d.body.state, d.body.batch])).toEqual([
      ['quality', 'firing', firedAt],
      ['quality', 'resolved', resolvedAt],
    ]);
    expect(deliveries[0]!.key).toBe(`eval:default:alerting:quality:firing:${firedAt}`);
    // The receiver refused the first POST; the activity's retry delivered it.
    expect(webhook.requests()).toBe(deliveries.length + 1);
    await ragline.env.client.workflow.getHandle('eval:default:alerting').terminate('test done');
  });

  it('bounds what proposals store, in bytes after NFKC normalisation, one by one and all together', async () => {
    const dataset = await copySet('bounds');
    await evals.start({ dataset, settings: { intervalMs: 3_600_000, batchSize: 3 } });
    await waitForStatus('bounds', (s) => s.batches === 1);
    const item = (id: string, question: string) => ({ id, question, relevant: { 'billing-invoices': 1 } });
    // 300 characters, 900 bytes as sent; NFKC turns each ligature into 18 letters.
    const ligatures = evals.propose(TENANT, 'bounds', { source: 'app', items: [item('q1', '\uFDFA'.repeat(300))] });
    await expect(ligatures).rejects.toThrow(
      /question q1 is \d+ bytes \(UTF-8, raw or after NFKC normalisation, whichever is more\); at most 4096/,
    );
    const longId = evals.propose(TENANT, 'bounds', { source: 'app', items: [item('x'.repeat(600), 'A question?')] });
    await expect(longId).rejects.toThrow(
      /a question id is 600 bytes \(UTF-8, raw or after NFKC normalisation, whichever is more\); at most 512/,
    );
    // 100 questions of 4,000 bytes fit one proposal; a second such proposal would pass what the workflow keeps.
    const big = (prefix: string) =>
      Array.from({ length: 100 }, (_, i) => item(`${prefix}${i}`, `${i} ${'q'.repeat(3990)}`));
    expect(await evals.propose(TENANT, 'bounds', { source: 'app', items: big('a') })).toMatchObject({
      status: 'pending',
    });
    await expect(evals.propose(TENANT, 'bounds', { source: 'app', items: big('b') })).rejects.toThrow(
      /the proposals kept would take \d+ bytes; at most 524288 are kept: decide pending proposals first/,
    );
    const status = await evals.status(TENANT, 'bounds');
    expect(status.pendingProposals.map((p) => p.items.length)).toEqual([100]);
    // Once it is decided, the record of it gives way to the next proposal instead of refusing it.
    const [first] = status.pendingProposals;
    await evals.decide(TENANT, 'bounds', {
      proposalId: first!.id,
      decision: 'reject',
      decidedBy: 'alice',
    });
    expect(await evals.propose(TENANT, 'bounds', { source: 'app', items: big('b') })).toMatchObject({
      status: 'pending',
    });
    const after = await evals.status(TENANT, 'bounds');
    expect(after.pendingProposals.map((p) => p.items[0]!.id)).toEqual(['b0']);
    await ragline.env.client.workflow.getHandle('eval:default:bounds').terminate('test done');
  });

  it('stores proposed questions until a person accepts them into the set', async () => {
    const dataset = await copySet('proposals');
    const before = await loadEvalSet(dataset);
    await evals.start({ dataset, settings: { intervalMs: 3_600_000, batchSize: 3 } });
    await waitForStatus('proposals', (s) => s.batches === 1);
    const item = { id: 'traffic-1', question: 'Can I export my invoices as CSV?', relevant: { 'billing-invoices': 1 } };

    const badProposal = evals.propose(TENANT, 'proposals', { items: [], source: 'improvement-loop' });
    await expect(badProposal).rejects.toThrow(/at least one question/);
    const proposal = await evals.propose(TENANT, 'proposals', { items: [item], source: 'improvement-loop' });
    expect(proposal).toMatchObject({ id: 'proposal-1', status: 'pending' });
    expect((await evals.status(TENANT, 'proposals')).pendingProposals.map((p) => p.id)).toEqual(['proposal-1']);
    // Nothing changes until a person decides, and a decision names that person.
    expect((await loadEvalSet(dataset)).version).toBe(before.version);
    const anonymous = evals.decide(TENANT, 'proposals', {
      proposalId: 'proposal-1',
      decision: 'accept',
      decidedBy: ' ',
    });
    await expect(anonymous).rejects.toThrow(/decidedBy must name the person/);

    const accepted = await evals.decide(TENANT, 'proposals', {
      proposalId: 'proposal-1',
      decision: 'accept',
      decidedBy: 'alice',
    });
    expect(accepted).toMatchObject({ status: 'accepted', decidedBy: 'alice' });
    // The question joins this tenant's overlay of the set; the set file every tenant evaluates against is untouched.
    expect((await loadEvalSet(dataset)).version).toBe(before.version);
    const overlayDir = path.join(ragline.runtime.config.RAGLINE_DATA_DIR, 'eval-overlays');
    const after = await loadTenantEvalSet(dataset, overlayFile(overlayDir, TENANT, dataset));
    expect(after.items).toHaveLength(before.items.length + 1);
    expect(after.items.at(-1)).toEqual(item);
    expect(accepted.appliedVersion).toBe(after.version);
    // Another tenant evaluating the same set sees neither the question nor a new version.
    await evals.start({ tenant: 'other', dataset, settings: { intervalMs: 3_600_000, batchSize: 3 } });
    const other = await waitUntil(
      "the other tenant's first batch",
      () => evals.status('other', 'proposals'),
      (s) => s.batches === 1,
    );
    expect(other).toMatchObject({ setVersion: before.version, setSize: before.items.length });
    await ragline.env.client.workflow.getHandle('eval:other:proposals').terminate('test done');

    await evals.runNow(TENANT, 'proposals');
    const next = await waitForStatus('proposals', (s) => s.batches === 2);
    expect(next.setVersion).toBe(after.version);
    expect(next.setSize).toBe(before.items.length + 1);

    // A set edited into an unusable state skips batches with the reason; the workflow carries on.
    const good = await fs.readFile(dataset, 'utf8');
    await fs.writeFile(dataset, 'not json\n');
    await evals.runNow(TENANT, 'proposals');
    const broken = await waitForStatus('proposals', (s) => s.lastError !== undefined && s.phase === 'waiting');
    expect(broken.lastError).toMatch(/^evaluation set unusable: .*no usable question/);
    expect(broken.batches).toBe(2);
    await fs.writeFile(dataset, good);
    await evals.runNow(TENANT, 'proposals');
    const fixed = await waitForStatus('proposals', (s) => s.batches === 3);
    expect(fixed.lastError).toBeUndefined();
    await ragline.env.client.workflow.getHandle('eval:default:proposals').terminate('test done');
  });

  // Last in the file: it stops the shared worker and carries on with another one.
  it('survives a worker restart: another worker carries on with the state', async () => {
    const dataset = await copySet('restart');
    await evals.start({ dataset, settings: { intervalMs: 3_600_000, batchSize: 3 } });
    const before = await waitForStatus('restart', (s) => s.batches === 1 && s.phase === 'waiting');
    ragline.worker.shutdown();
    await waitUntil(
      'the shared worker to stop',
      () => ragline.worker.getState(),
      (state) => state === 'STOPPED',
      {
        intervalMs: 50,
      },
    );
    const replacement = await createWorker({
      connection: ragline.env.nativeConnection,
      namespace: ragline.env.namespace ?? 'default',
      taskQueue: ragline.taskQueue,
      runtime: ragline.runtime,
      workflowBundle: await workflowBundle(),
    });
    const running = replacement.run();

    await evals.runNow(TENANT, 'restart');
    const after = await waitForStatus('restart', (s) => s.batches === 2 && s.phase === 'waiting');
    expect(after.history[0]).toEqual(before.history[0]);
    expect(after.questions).toBe(6);
    expect(after.baseline.batches).toBeGreaterThanOrEqual(before.baseline.batches);
    await ragline.env.client.workflow.getHandle('eval:default:restart').terminate('test done');
    replacement.shutdown();
    await running;
  });
});
