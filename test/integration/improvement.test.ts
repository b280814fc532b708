import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ImprovementClient } from '../../client/improvement-client.js';
import { createHttpApi } from '../../http/server.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { ErrorType, RaglineError } from '../../lib/errors.js';
import { RedisAuditBackend } from '../../lib/improve/param-store.js';
import { RedisQueryLog, type QueryRecord } from '../../lib/improve/query-log.js';
import { expectConcurrentChangesSerialised } from '../support/param-store-contract.js';
import type { AnswerQueryResult } from '../../contracts/query.js';
import { answerQueryWorkflow } from '../../workflows/index.js';
import {
  decideProposalSignal,
  getImprovementStatusQuery,
  improvementWorkflowId,
  legacyImprovementWorkflowId,
  runImprovementNowSignal,
  rollbackParamsUpdate,
  setParamsUpdate,
  updateApproversUpdate,
  type ImprovementSettings,
  type ImprovementStatus,
} from '../../contracts/improvement.js';
import { TestRedis } from '../support/redis.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { startTestTemporal } from '../support/temporal.js';
import { waitUntil } from '../support/wait.js';

const EVAL_SET = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');
const HOUR = 3_600_000;

describe('continuous improvement on a real dev server', () => {
  let env: TestWorkflowEnvironment;
  let ragline: TestRagline;
  let improvement: ImprovementClient;

  beforeAll(async () => {
    env = await startTestTemporal();
    ragline = await startRagline({ env });
    improvement = ragline.client.improvement;
  });
  afterAll(async () => {
    await ragline?.stop();
    await env?.teardown();
  });

  /** A tenant of its own with the sample corpus, and its improvement workflow (cycles only on run-now). */
  const tenantWith = async (settings: Partial<ImprovementSettings>) => {
    const tenant = `t${randomUUID().slice(0, 8)}`;
    await ragline.ingest([SAMPLE_CORPUS], tenant);
    await improvement.ensure(tenant, {
      intervalMs: HOUR,
      evalSet: EVAL_SET,
      approvers: ['alice'],
      approvalTtlMs: HOUR,
      ...settings,
    });
    return tenant;
  };

  const ask = (tenant: string, query: string): Promise<AnswerQueryResult> =>
    env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${tenant}-${randomUUID()}`,
      args: [{ query, tenant }],
    });

  /** Polls the workflow's query until `done` holds; fails inside the test's timeout with the last status seen. */
  const waitFor = (tenant: string, done: (s: ImprovementStatus) => boolean): Promise<ImprovementStatus> =>
    waitUntil(
      `a status of improve-${tenant} that satisfies ${done.toString()}`,
      () => improvement.status(tenant),
      done,
    );

  /** Sets a poor configuration and runs a cycle (auto-apply off): the proposal it makes, pending. */
  const proposalFromPoorStart = async (tenant: string) => {
    await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
    await improvement.runNow(tenant);
    const [proposal] = (await waitFor(tenant, (s) => s.cycles === 1)).pending;
    return proposal;
  };

  const refusal = (promise: Promise<unknown>) =>
    promise.then(
      () => {
        throw new Error('expected a refusal');
      },
      (error: unknown) => error as RaglineError,
    );

  const auditLength = async (tenant: string) => (await ragline.runtime.deps.improvement.params.history(tenant)).length;

  it('applies an in-bounds improving change by itself and bumps the parameter version', async () => {
    const tenant = await tenantWith({ autoApplyScale: 100 });
    const poor = await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
    expect(poor.toVersion).toBe(1);
    await improvement.runNow(tenant);
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    expect(status.history[0]?.outcome).toBe('auto-applied');
    expect(status.current?.version).toBe(2);
    expect(status.current?.params.topK).toBeGreaterThan(1);
    const [, applied] = await ragline.runtime.deps.improvement.params.history(tenant);
    expect(applied).toMatchObject({ actor: 'improvement-loop', action: 'auto-apply', fromVersion: 1, toVersion: 2 });
    expect(applied!.effect!.after - applied!.effect!.before).toBeGreaterThan(applied!.effect!.noise);
    // New queries use the new parameters without a restart.
    const answer = await ask(tenant, 'How do I reset my password?');
    expect(answer.sources.length).toBe(status.current!.params.topK);
  });

  it('holds a large change for approval: a non-allowed operator is refused, an allowed one applies it', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0 });
    await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
    await improvement.runNow(tenant);
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    expect(status.history[0]?.outcome).toBe('proposed');
    const [proposal] = status.pending;
    expect(proposal?.status).toBe('pending');
    expect(status.current?.version).toBe(1);
    const before = await auditLength(tenant);

    const mallory = await refusal(improvement.approve(tenant, proposal!.id, 'mallory', 'looks fine'));
    expect(mallory.type).toBe(ErrorType.InvalidInput);
    expect(mallory.message).toMatch(/mallory is not on the approvers allowlist/);
    expect((await refusal(improvement.approve(tenant, proposal!.id, 'alice', '  '))).message).toMatch(/reason/);
    expect((await refusal(improvement.approve(tenant, proposal!.id, 'alice', 'x'.repeat(501)))).message).toMatch(
      /501 characters/,
    );
    expect((await refusal(improvement.approve(tenant, 'p999', 'alice', 'ok'))).message).toMatch(
      /unknown proposal p999/,
    );
    expect(await auditLength(tenant)).toBe(before);
    expect((await improvement.status(tenant)).pending).toHaveLength(1);

    const approved = await improvement.approve(tenant, proposal!.id, 'alice', 'measured gain, reviewed');
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'alice', appliedVersion: 2 });
    const after = await improvement.status(tenant);
    expect(after.current).toEqual({ version: 2, params: proposal!.params });
    const audit = await ragline.runtime.deps.improvement.params.history(tenant);
    expect(audit.at(-1)).toMatchObject({ actor: 'alice', proposalId: proposal!.id, reason: 'measured gain, reviewed' });
    // Approving twice is refused: it was decided.
    expect((await refusal(improvement.approve(tenant, proposal!.id, 'alice', 'again'))).message).toMatch(/already/);
  });

  it('marks a proposal approved only once it is applied: a failed apply leaves it pending, and the loop runs on', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0 });
    const proposal = await proposalFromPoorStart(tenant);
    const params = ragline.runtime.deps.improvement.params;
    const apply = params.apply.bind(params);
    // The parameter store refuses the write, as it does for a configured default out of bounds.
    params.apply = async () => {
      throw new RaglineError(ErrorType.Configuration, 'RAGLINE_TOP_K is out of bounds');
    };
    try {
      const failed = await refusal(improvement.approve(tenant, proposal!.id, 'alice', 'measured gain'));
      expect(failed.message).toMatch(/RAGLINE_TOP_K is out of bounds/);
      // The same by signal (`approvals approve --async`), and a signal with no payload: logged, never fatal.
      await improvement.decideAsync(tenant, 'approve', proposal!.id, 'alice', 'measured gain');
      const handle = env.client.workflow.getHandle(improvementWorkflowId(tenant));
      await handle.signal(decideProposalSignal, undefined as never);
      // The signal's attempt has ended once no activity is pending and the query (ordered after it) answers.
      await waitUntil(
        'the signalled approval to finish',
        async () => (await handle.describe()).raw.pendingActivities?.length ?? 0,
        (pending) => pending === 0,
      );
      const after = await improvement.status(tenant);
      expect(after.pending).toHaveLength(1);
      expect(after.pending[0]).toMatchObject({
        id: proposal!.id,
        status: 'pending',
        applyError: expect.stringMatching(/out of bounds/),
      });
      expect(after.pending[0]!.appliedVersion).toBeUndefined();
      expect(after.current?.version).toBe(1);
    } finally {
      params.apply = apply;
    }
    const handle = env.client.workflow.getHandle(improvementWorkflowId(tenant));
    expect((await handle.describe()).status.name).toBe('RUNNING');
    expect(await handle.query(getImprovementStatusQuery)).toMatchObject({ cycles: 1 });
    // Once the store takes writes again, the same proposal can be approved, and it is then applied.
    const approved = await improvement.approve(tenant, proposal!.id, 'alice', 'store is back');
    expect(approved).toMatchObject({ status: 'approved', decidedBy: 'alice', appliedVersion: 2 });
    expect(approved.applyError).toBeUndefined();
    expect((await improvement.status(tenant)).current?.version).toBe(2);
  });

  it('adopts a loop still running under the id of before #24: its state carries over and it ends', async () => {
    const tenant = `t${randomUUID().slice(0, 8)}`;
    await ragline.ingest([SAMPLE_CORPUS], tenant);
    const settings = {
      intervalMs: HOUR,
      evalSet: EVAL_SET,
      approvers: ['alice'],
      approvalTtlMs: HOUR,
      autoApplyScale: 0,
    };
    const start = (workflowId: string, owner: string) =>
      env.client.workflow.start('improvementWorkflow', {
        taskQueue: ragline.taskQueue,
        workflowId,
        args: [{ tenant: owner, settings }],
      });
    const legacy = await start(legacyImprovementWorkflowId(tenant), tenant);
    await legacy.executeUpdate(setParamsUpdate, {
      args: [{ operator: 'alice', reason: 'before', params: { topK: 1 } }],
    });
    await legacy.signal(runImprovementNowSignal);
    await waitUntil(
      'a cycle of the legacy loop',
      () => legacy.query(getImprovementStatusQuery),
      (s) => s.cycles === 1,
    );
    // Under a legacy id another tenant's loop could sit: one whose tenant differs is left alone.
    const foreign = await start(legacyImprovementWorkflowId(`${tenant}x`), `${tenant}y`);

    await improvement.ensure(tenant, settings);
    const adopted = await improvement.status(tenant);
    expect(adopted).toMatchObject({ cycles: 1, current: { version: 1 } });
    expect(adopted.pending).toHaveLength(1);
    expect((await legacy.describe()).status.name).toBe('TERMINATED');
    await improvement.ensure(`${tenant}x`, settings);
    expect((await foreign.describe()).status.name).toBe('RUNNING');
    await foreign.terminate('test done');
    // The adopted proposal is decided on the new loop.
    const approved = await improvement.approve(tenant, adopted.pending[0]!.id, 'alice', 'adopted');
    expect(approved).toMatchObject({ status: 'approved', appliedVersion: 2 });
  });

  it('expires a proposal whose expiry passed while its approval was failing to apply', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0, approvalTtlMs: 4_000 });
    const proposal = await proposalFromPoorStart(tenant);
    const params = ragline.runtime.deps.improvement.params;
    const apply = params.apply.bind(params);
    // The write hangs past the proposal's expiry, then fails.
    params.apply = async () => {
      await new Promise((resolve) =>
        setTimeout(resolve, Math.max(Date.parse(proposal!.expiresAt) - Date.now(), 0) + 500),
      );
      throw new RaglineError(ErrorType.Configuration, 'parameter store refused the write');
    };
    try {
      await refusal(improvement.approve(tenant, proposal!.id, 'alice', 'measured gain'));
    } finally {
      params.apply = apply;
    }
    const after = await improvement.status(tenant);
    expect(after.pending).toEqual([]);
    expect(after.proposals.find((p) => p.id === proposal!.id)).toMatchObject({
      status: 'expired',
      applyError: expect.stringMatching(/refused the write/),
    });
    const late = await refusal(improvement.approve(tenant, proposal!.id, 'alice', 'too late'));
    expect(late.message).toMatch(/expired/);
  });

  it('writes a change made after the loop was terminated and started again: change ids are unique across runs', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0 });
    const first = await improvement.setParams(tenant, { topK: 2 }, 'alice', 'before the restart');
    expect(first).toMatchObject({ fromVersion: 0, toVersion: 1 });
    await env.client.workflow.getHandle(improvementWorkflowId(tenant)).terminate('operator restarts the loop');
    await improvement.ensure(tenant, {
      intervalMs: HOUR,
      evalSet: EVAL_SET,
      approvers: ['alice'],
      approvalTtlMs: HOUR,
    });
    // The new run's first change has the same counter as the old run's; it must still be written.
    const second = await improvement.setParams(tenant, { topK: 3 }, 'alice', 'after the restart');
    expect(second).toMatchObject({ fromVersion: 1, toVersion: 2, params: { topK: 3 } });
    const rolledBack = await improvement.rollback(tenant, 'alice', 'undo after the restart');
    expect(rolledBack).toMatchObject({ action: 'rollback', fromVersion: 2, toVersion: 1 });
    const audit = await ragline.runtime.deps.improvement.params.history(tenant);
    expect(audit.map((e) => e.toVersion)).toEqual([1, 2, 1]);
    expect((await improvement.status(tenant)).current).toMatchObject({ version: 1, params: { topK: 2 } });
  });

  it('revokes an operator removed from the allowlist when the loop is ensured with the new list, and audits it', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0, approvers: ['alice', 'bob'] });
    expect(await improvement.setParams(tenant, { topK: 2 }, 'bob', 'bob is an approver')).toMatchObject({
      toVersion: 1,
    });
    // What `ragline up` and `improve start` do with RAGLINE_APPROVERS=alice.
    await improvement.ensure(tenant, {
      intervalMs: HOUR,
      evalSet: EVAL_SET,
      approvers: ['alice'],
      approvalTtlMs: HOUR,
    });
    const revoked = await refusal(improvement.setParams(tenant, { topK: 3 }, 'bob', 'after the revocation'));
    expect(revoked.message).toMatch(/bob is not on the approvers allowlist/);
    expect(await improvement.setParams(tenant, { topK: 3 }, 'alice', 'alice still is')).toMatchObject({ toVersion: 2 });
    const status = await improvement.status(tenant);
    expect(status.settings.approvers).toEqual(['alice']);
    expect(status.approverChanges).toEqual([
      expect.objectContaining({ actor: 'configuration', from: ['alice', 'bob'], to: ['alice'] }),
    ]);
    // Ensuring again with the same list changes nothing; a malformed list is refused by the validator.
    await improvement.ensure(tenant, { approvers: ['alice'] });
    const handle = env.client.workflow.getHandle(improvementWorkflowId(tenant));
    await expect(
      handle.executeUpdate(updateApproversUpdate, { args: [{ approvers: ['bad name'], actor: 'x', reason: 'y' }] }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    expect((await improvement.status(tenant)).approverChanges).toHaveLength(1);
  });

  it('revokes a removed operator at the next decision of a client configured without them, with no restart', async () => {
    const tenant = await tenantWith({ autoApplyScale: 0, approvers: ['alice', 'bob'] });
    // A server (or CLI) whose RAGLINE_APPROVERS is alice: the loop was never ensured with that list.
    const configured = new ImprovementClient(env.client, ragline.taskQueue, ['alice']);
    const revoked = await refusal(configured.setParams(tenant, { topK: 2 }, 'bob', 'bob was removed'));
    expect(revoked.message).toMatch(/bob is not on the approvers allowlist/);
    await configured.decideAsync(tenant, 'approve', 'p404', 'bob', 'a signal is checked the same way');
    const status = await improvement.status(tenant);
    expect(status.settings.approvers).toEqual(['alice']);
    expect(status.current?.version ?? 0).toBe(0);
    expect(status.approverChanges).toEqual([
      expect.objectContaining({ actor: 'configuration', from: ['alice', 'bob'], to: ['alice'] }),
    ]);
    expect(await configured.setParams(tenant, { topK: 2 }, 'alice', 'alice still is')).toMatchObject({ toVersion: 1 });
  });

  it("does not apply over an operator's change made while the shadow evaluation ran", async () => {
    const tenant = await tenantWith({ autoApplyScale: 100 });
    await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
    // The shadow evaluation's first search waits until the operator's change is written: the change lands mid-run.
    const store = ragline.runtime.deps.store;
    const search = store.search.bind(store);
    let started!: () => void;
    const shadowStarted = new Promise<void>((resolve) => (started = resolve));
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    store.search = async (...args) => {
      if (args[0] === tenant) {
        started();
        await gate;
      }
      return search(...args);
    };
    let operator;
    try {
      await improvement.runNow(tenant);
      await shadowStarted;
      operator = await improvement.setParams(tenant, { topK: 7 }, 'alice', 'set by hand meanwhile');
    } finally {
      release();
      store.search = search;
    }
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    expect(status.history[0]).toMatchObject({ outcome: 'superseded', version: operator.toVersion });
    expect(status.current).toMatchObject({ version: operator.toVersion, params: { topK: 7 } });
    const audit = await ragline.runtime.deps.improvement.params.history(tenant);
    expect(audit.map((e) => e.action)).toEqual(['apply', 'apply']);
  });

  it('lets an unanswered proposal expire, after which approving it is refused', async () => {
    // Long enough that the proposal is surely seen pending first on a loaded machine (the cycle ends, then the poll).
    const tenant = await tenantWith({ autoApplyScale: 0, approvalTtlMs: 8000 });
    await improvement.setParams(tenant, { topK: 1 }, 'alice', 'start from a poor configuration');
    await improvement.runNow(tenant);
    const proposed = await waitFor(tenant, (s) => s.cycles === 1);
    const id = proposed.pending[0]!.id;
    const expired = await waitFor(tenant, (s) => s.proposals.some((p) => p.id === id && p.status === 'expired'));
    expect(expired.pending).toHaveLength(0);
    expect(expired.current?.version).toBe(1);
    const before = await auditLength(tenant);
    expect((await refusal(improvement.approve(tenant, id, 'alice', 'too late'))).message).toMatch(/expired/);
    expect((await refusal(improvement.reject(tenant, id, 'alice', 'too late'))).message).toMatch(/expired/);
    expect(await auditLength(tenant)).toBe(before);
    expect((await improvement.status(tenant)).current?.version).toBe(1);
  });

  it("refuses bad input at the workflow's validators too, for clients that skip the CLI's checks", async () => {
    const tenant = await tenantWith({});
    const handle = env.client.workflow.getHandle(improvementWorkflowId(tenant));
    const refusedWith = async (update: Promise<unknown>) => {
      const error = await update.then(
        () => {
          throw new Error('expected a refusal');
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
      return ((error as WorkflowUpdateFailedError).cause as Error).message;
    };
    const set = (params: Record<string, unknown>, reason = 'try', operator = 'alice') =>
      refusedWith(handle.executeUpdate(setParamsUpdate, { args: [{ operator, reason, params }] }));
    expect(await set({ topK: 0, bm25B: 1.5 })).toMatch(/topK=0 is outside its bounds.*bm25B=1.5 is outside/);
    expect(await set({ fusionWeight: 2 })).toMatch(/fusionWeight=2 is outside its bounds \[0, 1\]/);
    expect(await set({ temperature: 1 })).toMatch(/unknown parameter temperature/);
    expect(await set({})).toMatch(/no parameter to set/);
    expect(await set({ topK: 3 }, '')).toMatch(/a reason is required/);
    expect(await set({ topK: 3 }, 'x'.repeat(501))).toMatch(/501 characters; at most 500/);
    expect(await set({ topK: 3 }, 'ok', 'mallory')).toMatch(/mallory is not on the approvers allowlist/);
    const rollback = (reason: string, operator = 'alice') =>
      refusedWith(handle.executeUpdate(rollbackParamsUpdate, { args: [{ operator, reason }] }));
    expect(await rollback(' ')).toMatch(/a reason is required/);
    expect(await rollback('undo', 'mallory')).toMatch(/mallory is not on the approvers allowlist/);
    expect((await refusal(improvement.reject(tenant, 'p42', 'alice', 'no'))).message).toMatch(/unknown proposal p42/);
    // Fire-and-forget decisions on unknown proposals are dropped; the Update after them is ordered after them.
    await improvement.decideAsync(tenant, 'approve', 'p42', 'alice', 'ok');
    await improvement.decideAsync(tenant, 'reject', 'p43', 'mallory', 'ok');
    expect(await auditLength(tenant)).toBe(0);
    const applied = await improvement.setParams(tenant, { topK: 3 }, 'alice', 'the one valid change');
    expect(applied).toMatchObject({ fromVersion: 0, toVersion: 1 });
    expect(await ragline.runtime.deps.improvement.params.history(tenant)).toEqual([applied]);
    expect((await improvement.status(tenant)).proposals).toEqual([]);
  });

  it('refuses parameters set by hand outside their bounds, naming them, and leaves the audit log alone', async () => {
    const tenant = await tenantWith({});
    const error = await refusal(improvement.setParams(tenant, { bm25B: 1.5, topK: 0 }, 'alice', 'try'));
    expect(error).toBeInstanceOf(RaglineError);
    expect(error.message).toMatch(/bm25B=1.5 is outside its bounds \[0, 1\]/);
    expect(error.message).toMatch(/topK=0/);
    expect(await auditLength(tenant)).toBe(0);
  });

  it('rolls back to the previous version, and answers cached under the rolled-back version are not served', async () => {
    const tenant = await tenantWith({});
    await improvement.setParams(tenant, { topK: 2 }, 'alice', 'fewer sources');
    const question = 'How do I set up webhooks?';
    expect((await ask(tenant, question)).cache.result).toBe('miss');
    const cached = await ask(tenant, question);
    expect(cached.cache.result).toBe('hit');
    expect(cached.sources).toHaveLength(2);

    const rolled = await improvement.rollback(tenant, 'alice', 'two sources are too few');
    expect(rolled).toMatchObject({ action: 'rollback', fromVersion: 1, toVersion: 0 });
    expect((await improvement.status(tenant)).current?.version).toBe(0);
    const after = await ask(tenant, question);
    expect(after.cache.result).toBe('miss');
    expect(after.sources).toHaveLength(5);
    expect((await refusal(improvement.rollback(tenant, 'alice', 'again'))).type).toBe(ErrorType.NotFound);
  });

  it('logs every answer (hits too) and suggests a document on a topic asked about repeatedly without an answer', async () => {
    const tenant = await tenantWith({});
    const unanswerable = [
      'How do I enable quantum teleportation?',
      'Is quantum teleportation supported on the free plan?',
      'quantum teleportation pricing',
    ];
    for (const q of unanswerable) await ask(tenant, q);
    await ask(tenant, 'How do I reset my password?');
    const hit = await ask(tenant, 'How do I reset my password?');
    expect(hit.cache.result).toBe('hit');
    await improvement.runNow(tenant);
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    const analysis = status.lastAnalysis!;
    expect(analysis.volume).toBe(5);
    expect(analysis.hitRatio.result).toBeCloseTo(0.2, 5);
    const [suggestion] = analysis.documentSuggestions;
    expect(suggestion?.topic).toMatch(/quantum teleportation/);
    expect(suggestion?.estimatedImpact.queries).toBe(3);
    expect(suggestion?.priority).toBe('high');
    expect(analysis.documentSuggestions.some((s) => /password/.test(s.topic))).toBe(false);
  });

  it('takes feedback for a logged query through the client and the HTTP route, and refuses unknown ids', async () => {
    const tenant = await tenantWith({});
    const answer = await ask(tenant, 'What are the API rate limits?');
    expect(await improvement.feedback({ queryId: answer.queryId, score: 5, comment: 'spot on' })).toEqual({
      queryId: answer.queryId,
      tenant,
    });
    const unknown = await refusal(improvement.feedback({ queryId: 'query-nobody-asked', score: 3 }));
    expect(unknown.type).toBe(ErrorType.NotFound);

    const api = await createHttpApi(new RaglineClient(env.client, ragline.taskQueue, { maxQueryChars: 4000 }));
    const ok = await api.inject({
      method: 'POST',
      url: '/v1/feedback',
      payload: { queryId: answer.queryId, score: 4 },
    });
    expect(ok.statusCode).toBe(201);
    const missing = await api.inject({ method: 'POST', url: '/v1/feedback', payload: { queryId: 'nope', score: 4 } });
    expect(missing.statusCode).toBe(404);
    const bad = await api.inject({
      method: 'POST',
      url: '/v1/feedback',
      payload: { queryId: answer.queryId, score: 9 },
    });
    expect(bad.statusCode).toBe(400);
    await api.close();

    await improvement.runNow(tenant);
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    expect(status.lastAnalysis?.feedback.count).toBe(2);
    // A well-rated real question becomes an evaluation-set proposal citing the documents its answer used.
    expect(status.lastAnalysis?.evalSetProposals[0]).toMatchObject({
      queryId: answer.queryId,
      question: 'what are the api rate limits',
    });
    // No evaluation workflow runs for this tenant: the cycle says so and goes on.
    expect(status.history[0]?.evalProposal).toMatchObject({ outcome: 'no-evaluation-workflow', questions: 0 });
  });

  it('counts semantic-cache hits and how users rated them', async () => {
    const tenant = await tenantWith({});
    await improvement.feedback({ queryId: (await ask(tenant, 'How can I reset my password?')).queryId, score: 5 });
    const nearDuplicate = await ask(tenant, 'How do I reset my password?');
    expect(nearDuplicate.cache).toMatchObject({ result: 'miss', semantic: 'hit' });
    await improvement.feedback({ queryId: nearDuplicate.queryId, score: 1 });
    await improvement.runNow(tenant);
    const status = await waitFor(tenant, (s) => s.cycles === 1);
    expect(status.lastAnalysis?.semanticHits).toEqual({ served: 1, rated: 1, poorlyRated: 1 });
  });

  it('sends well-rated logged questions to the evaluation workflow as a proposal, once, and no badly rated one', async () => {
    const tenant = await tenantWith({});
    const evaluation = ragline.client.evaluation;
    const started = await evaluation.start({ tenant, dataset: EVAL_SET, settings: { intervalMs: HOUR, batchSize: 1 } });
    const rate = async (query: string, score: number) =>
      improvement.feedback({ queryId: (await ask(tenant, query)).queryId, score });
    await rate('How do I rotate an API key?', 5);
    await rate('Can I connect Snowflake to Lumen?', 1);
    // Already in the set (gt-001), in other case and punctuation: not proposed again.
    await rate('how do i reset my password', 5);
    await improvement.runNow(tenant);
    const first = await waitFor(tenant, (s) => s.cycles === 1);
    expect(first.history[0]?.evalProposal).toMatchObject({
      outcome: 'proposed',
      workflowId: started.workflowId,
      questions: 1,
      skipped: 1,
    });
    const pending = (await evaluation.status(tenant, started.set.name)).pendingProposals;
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ id: first.history[0]?.evalProposal?.proposalId, source: 'improvement-loop' });
    expect(pending[0]!.items.map((item) => item.question)).toEqual(['how do i rotate an api key']);
    expect(Object.keys(pending[0]!.items[0]!.relevant)).toContain('api-key-rotation');

    // Asked and praised again (a cache hit, another query id): still one proposal on the evaluation workflow.
    await rate('How do I rotate an API key?', 4);
    await improvement.runNow(tenant);
    const second = await waitFor(tenant, (s) => s.cycles === 2);
    expect(second.history[1]?.evalProposal).toMatchObject({ outcome: 'nothing-new', questions: 0 });
    expect((await evaluation.status(tenant, started.set.name)).pendingProposals).toHaveLength(1);
  });

  it('leaves out a question the evaluation workflow would refuse and proposes the rest, once', async () => {
    const tenant = await tenantWith({});
    const evaluation = ragline.client.evaluation;
    const started = await evaluation.start({ tenant, dataset: EVAL_SET, settings: { intervalMs: HOUR, batchSize: 1 } });
    const rate = async (query: string, score: number) =>
      improvement.feedback({ queryId: (await ask(tenant, query)).queryId, score });
    // 300 characters, but U+FDFA becomes 18 letters under NFKC: past the 4,096 bytes a proposed question may take.
    await rate(`How do I rotate an API key? ${'\uFDFA'.repeat(272)}`, 5);
    await rate('How do I rotate an API key?', 5);
    await improvement.runNow(tenant);
    const first = await waitFor(tenant, (s) => s.cycles === 1);
    expect(first.history[0]?.evalProposal).toMatchObject({ outcome: 'proposed', questions: 1, refused: 1 });
    const pending = (await evaluation.status(tenant, started.set.name)).pendingProposals;
    expect(pending.flatMap((p) => p.items.map((item) => item.question))).toEqual(['how do i rotate an api key']);
    // The refused question is not tried again next cycle.
    await improvement.runNow(tenant);
    const second = await waitFor(tenant, (s) => s.cycles === 2);
    expect(second.history[1]?.evalProposal).toMatchObject({ outcome: 'nothing-new', questions: 0 });
    expect(second.history[1]?.evalProposal?.refused).toBeUndefined();
  });
});

describe('query log with query redaction on', () => {
  let env: TestWorkflowEnvironment;
  let ragline: TestRagline;
  let improvement: ImprovementClient;

  beforeAll(async () => {
    env = await startTestTemporal();
    ragline = await startRagline({
      env,
      config: { RAGLINE_LOG_REDACT_QUERIES: 'true', RAGLINE_REDACT_KEY: 'r'.repeat(32) },
    });
    improvement = ragline.client.improvement;
  });
  afterAll(async () => {
    await ragline?.stop();
    await env?.teardown();
  });

  it('stores a hash instead of the question, still groups identical questions, and proposes none to the evaluation set', async () => {
    const tenant = `t${randomUUID().slice(0, 8)}`;
    await ragline.ingest([SAMPLE_CORPUS], tenant);
    await improvement.ensure(tenant, { intervalMs: HOUR, evalSet: EVAL_SET, approvers: ['alice'] });
    const rate = async (query: string, score: number) => {
      const { queryId } = await env.client.workflow.execute(answerQueryWorkflow, {
        taskQueue: ragline.taskQueue,
        workflowId: `query-${tenant}-${randomUUID()}`,
        args: [{ query, tenant }],
      });
      await improvement.feedback({ queryId, score });
    };
    await rate('How do I enable quantum teleportation?', 1);
    await rate('how do I enable quantum teleportation', 1);
    await rate('Is quantum teleportation on the free plan?', 1);
    await rate('How do I rotate an API key?', 5);

    const text = await readFile(path.join(ragline.dataDir, 'query-log', `${tenant}.jsonl`), 'utf8');
    expect(text).not.toMatch(/teleportation|rotate/i);
    const logged = text
      .split('\n')
      .filter((line) => line.includes('"kind":"query"'))
      .map((line) => JSON.parse(line) as QueryRecord);
    expect(logged).toHaveLength(4);
    for (const record of logged)
      expect(record).toMatchObject({ question: expect.stringMatching(/^hmac:[0-9a-f]{32}$/), redacted: true });

    await improvement.runNow(tenant);
    const status = await waitUntil(
      `the first improvement cycle of ${tenant}`,
      () => improvement.status(tenant),
      (s) => s.cycles === 1,
    );
    const analysis = status.lastAnalysis!;
    expect(analysis.volume).toBe(4);
    // The two spellings of one question normalise to one hash; the third question shares words, not its hash.
    expect(analysis.documentSuggestions).toHaveLength(1);
    expect(analysis.documentSuggestions[0]).toMatchObject({
      topic: `redacted question ${logged[0]!.question}`,
      estimatedImpact: { queries: 2 },
    });
    expect(analysis.evalSetProposals).toEqual([]);
    expect(status.history[0]?.evalProposal).toBeUndefined();
  });
});

describe('query log and parameter audit log on Redis', () => {
  let redis: TestRedis;
  let client: Redis;
  beforeAll(async () => {
    redis = await TestRedis.start();
    client = new Redis(redis.url);
  });
  afterAll(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  const record = (i: number, tenant = 'acme'): QueryRecord => ({
    queryId: `q-${tenant}-${i}`,
    at: new Date().toISOString(),
    tenant,
    question: `question ${i}`,
    cache: { result: 'miss' },
    cacheHit: false,
    sources: ['doc-a'],
    qualityScore: 0.7,
    degraded: false,
    latencyMs: 12,
  });

  it('bounds each stream by size, keeps tenants apart, and joins feedback by query id', async () => {
    const log = new RedisQueryLog(client, 'qltest:', { retentionMs: HOUR, maxEntries: 100 });
    await log.append(Array.from({ length: 1000 }, (_, i) => record(i)));
    await log.append([record(1, 'other')]);
    const length = await client.xlen('qltest:qlog:{acme}:queries');
    // MAXLEN ~ trims whole macro nodes: at least 100 stay, far fewer than 1000.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThan(1000);
    expect(await log.find('q-acme-999')).toEqual({ tenant: 'acme' });
    expect(await log.find('q-unknown')).toBeUndefined();
    await log.addFeedback({ queryId: 'q-acme-999', tenant: 'acme', at: new Date().toISOString(), score: 2 });
    const window = await log.read('acme', Date.now() - HOUR);
    expect(window.queries.every((q) => q.tenant === 'acme')).toBe(true);
    expect(window.queries.at(-1)?.queryId).toBe('q-acme-999');
    expect(window.feedback).toEqual([expect.objectContaining({ queryId: 'q-acme-999', score: 2 })]);
    expect((await log.read('other', 0)).queries.map((q) => q.queryId)).toEqual(['q-other-1']);
  });

  it('gives concurrent parameter changes from two workers distinct versions, each computed from the other', async () => {
    await expectConcurrentChangesSerialised(new RedisAuditBackend(client, 'ragline-test:'));
  });
});
