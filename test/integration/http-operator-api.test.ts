import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHttpApi, operatorRoutes } from '../../http/server.js';
import type { ImprovementClient } from '../../client/improvement-client.js';
import { RaglineClient } from '../../client/ragline-client.js';
import { createApiToken, parseApiTokens } from '../../lib/api-tokens.js';
import type { ImprovementStatus, ParamProposal } from '../../contracts/improvement.js';
import { runCli } from '../support/cli.js';
import { apiRequest, type ApiRequestOptions } from '../support/http.js';
import { SAMPLE_CORPUS, startRagline, type TestRagline } from '../support/ragline.js';
import { waitUntil } from '../support/wait.js';

const EVAL_SET = path.resolve(import.meta.dirname, '../../sample-corpus/ground-truth.jsonl');
const HOUR = 3_600_000;

interface ErrorReply {
  error: { type: string; message: string };
}

describe('HTTP API for operators: approvals and evaluation', () => {
  let ragline: TestRagline;
  let improvement: ImprovementClient;
  let api: FastifyInstance;
  let base: string;
  /** Two tenants whose improvement loops each hold one proposal; the second's expires quickly. */
  const tenant = `op${randomUUID().slice(0, 8)}`;
  const expiring = `ex${randomUUID().slice(0, 8)}`;
  const app = createApiToken(tenant);
  const alice = createApiToken(tenant, { operator: 'alice' });
  const mallory = createApiToken(tenant, { operator: 'mallory' });
  const aliceExpired = createApiToken(tenant, {
    expires: '2001-01-01',
    operator: 'alice',
    now: new Date('2000-06-01'),
  });
  const aliceElsewhere = createApiToken('acme', { operator: 'alice' });
  const aliceExpiring = createApiToken(expiring, { operator: 'alice' });
  const aliceEu = createApiToken(`${tenant}-eu`, { operator: 'alice' });

  const waitFor = (t: string, done: (s: ImprovementStatus) => boolean): Promise<ImprovementStatus> =>
    waitUntil(`a status of improve-${t} that satisfies ${done.toString()}`, () => improvement.status(t), done);

  /** A tenant with the sample corpus whose improvement loop has raised one proposal (its topK set poor first). */
  const withProposal = async (t: string, approvalTtlMs: number) => {
    await ragline.ingest([SAMPLE_CORPUS], t);
    await improvement.ensure(t, {
      intervalMs: HOUR,
      evalSet: EVAL_SET,
      approvers: ['alice'],
      approvalTtlMs,
      autoApplyScale: 0,
    });
    await improvement.setParams(t, { topK: 1 }, 'alice', 'start from a poor configuration');
    await improvement.runNow(t);
    return waitFor(t, (s) => s.cycles === 1);
  };

  beforeAll(async () => {
    ragline = await startRagline();
    improvement = ragline.client.improvement;
    await Promise.all([withProposal(tenant, HOUR), withProposal(expiring, 1500)]);
    for (const t of [tenant, `${tenant}-eu`]) {
      await ragline.client.evaluation.start({
        tenant: t,
        dataset: EVAL_SET,
        settings: { intervalMs: HOUR, batchSize: 2 },
      });
    }
    const client = new RaglineClient(ragline.env.client, ragline.taskQueue, { maxQueryChars: 4000 });
    const tokens = parseApiTokens(
      [app, alice, mallory, aliceExpired, aliceElsewhere, aliceExpiring, aliceEu].map((t) => t.entry).join(','),
    );
    api = await createHttpApi(client, {
      tokens,
      rateLimitPerMinute: 1000,
      routes: [operatorRoutes(ragline.env.client, ragline.taskQueue, { evalSet: EVAL_SET })],
    });
    base = await api.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await api?.close();
    await ragline?.stop();
  });

  const call = (method: string, route: string, options: ApiRequestOptions = {}) =>
    apiRequest(base, method, route, options);
  const errorOf = async (response: Response) => ((await response.json()) as ErrorReply).error;
  const pendingId = async () => (await improvement.status(tenant)).pending[0]!.id;

  it("lists the tenant's pending proposals to its operators' tokens, and only to them", async () => {
    const byApp = await call('GET', '/v1/approvals', { token: app.token });
    expect(byApp.status).toBe(403);
    expect((await errorOf(byApp)).message).toMatch(/lacks the operator scope .*--operator NAME/);
    const listed = await call('GET', '/v1/approvals', { token: alice.token });
    expect(listed.status).toBe(200);
    const body = (await listed.json()) as { tenant: string; approvers: string[]; proposals: ParamProposal[] };
    expect(body.tenant).toBe(tenant);
    expect(body.approvers).toEqual(['alice']);
    expect(body.proposals).toHaveLength(1);
    expect(body.proposals[0]).toMatchObject({
      status: 'pending',
      fromVersion: 1,
      params: { topK: expect.any(Number) },
    });
    expect((await call('GET', '/v1/approvals')).status).toBe(401);
    expect((await call('GET', `/v1/approvals?tenant=${tenant}`, { token: aliceElsewhere.token })).status).toBe(403);
    const none = await call('GET', '/v1/approvals', { token: aliceElsewhere.token });
    expect(none.status).toBe(404);
    expect((await errorOf(none)).message).toMatch(/no improvement workflow runs for tenant acme/);
  });

  it("refuses an app's token, an operator off the allowlist and a bad body, changing nothing", async () => {
    const id = await pendingId();
    const route = `/v1/approvals/${id}/approve`;
    const byApp = await call('POST', route, { token: app.token, body: { reason: 'ship it' } });
    expect(byApp.status).toBe(403);
    expect(await errorOf(byApp)).toMatchObject({ type: 'Forbidden', message: /lacks the operator scope/ });
    // An app cannot claim to be an operator: the body's operator must match the token's.
    const claimed = await call('POST', route, { token: app.token, body: { reason: 'ship it', operator: 'alice' } });
    expect(claimed.status).toBe(403);
    const byMallory = await call('POST', route, { token: mallory.token, body: { reason: 'ship it' } });
    expect(byMallory.status).toBe(403);
    expect((await errorOf(byMallory)).message).toMatch(/mallory is not on the approvers allowlist/);
    const asOther = await call('POST', route, { token: mallory.token, body: { reason: 'x', operator: 'alice' } });
    expect((await errorOf(asOther)).message).toMatch(/acts as operator mallory, not alice/);
    const expired = await call('POST', route, { token: aliceExpired.token, body: { reason: 'ship it' } });
    expect(expired.status).toBe(401);
    expect((await errorOf(expired)).message).toBe('token expired');
    const elsewhere = await call('POST', route, { token: aliceElsewhere.token, body: { reason: 'ship it' } });
    expect(elsewhere.status).toBe(404);
    const otherTenant = await call('POST', route, {
      token: aliceElsewhere.token,
      body: { reason: 'ship it', tenant },
    });
    expect(otherTenant.status).toBe(403);

    const unknownField = await call('POST', route, { token: alice.token, body: { reason: 'ok', approve: true } });
    expect(unknownField.status).toBe(400);
    expect((await errorOf(unknownField)).message).toMatch(/approve/);
    const blank = await call('POST', route, { token: alice.token, body: { reason: '   ' } });
    expect(blank.status).toBe(400);
    expect((await errorOf(blank)).message).toMatch(/body\.reason/);
    const tooLong = await call('POST', route, { token: alice.token, body: { reason: 'x'.repeat(501) } });
    expect(tooLong.status).toBe(400);
    const text = await call('POST', route, { token: alice.token, raw: 'reason=ok', type: 'text/plain' });
    expect(text.status).toBe(415);
    expect((await errorOf(text)).message).toMatch(/text\/plain/);
    const huge = await call('POST', route, { token: alice.token, raw: JSON.stringify({ reason: 'x'.repeat(70_000) }) });
    expect(huge.status).toBe(413);

    const unknown = await call('POST', '/v1/approvals/p999/approve', { token: alice.token, body: { reason: 'ok' } });
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).message).toBe('unknown proposal p999');

    const status = await improvement.status(tenant);
    expect(status.pending.map((p) => p.id)).toEqual([id]);
    expect(status.current?.version).toBe(1);
  });

  it('applies a proposal an allowed operator approves, as that operator, and refuses deciding it twice', async () => {
    const id = await pendingId();
    const approved = await call('POST', `/v1/approvals/${id}/approve`, {
      token: alice.token,
      body: { reason: 'measured gain, reviewed' },
    });
    expect(approved.status).toBe(200);
    const proposal = (await approved.json()) as ParamProposal;
    expect(proposal).toMatchObject({ id, status: 'approved', decidedBy: 'alice', appliedVersion: 2 });
    const status = await improvement.status(tenant);
    expect(status.current).toEqual({ version: 2, params: proposal.params });
    const audit = await ragline.runtime.deps.improvement.params.history(tenant);
    expect(audit.at(-1)).toMatchObject({ actor: 'alice', proposalId: id, reason: 'measured gain, reviewed' });

    const again = await call('POST', `/v1/approvals/${id}/reject`, { token: alice.token, body: { reason: 'no' } });
    expect(again.status).toBe(409);
    expect((await errorOf(again)).message).toBe(`proposal ${id} was already approved`);
    const all = (await (await call('GET', '/v1/approvals?all=true', { token: alice.token })).json()) as {
      proposals: ParamProposal[];
    };
    expect(all.proposals.find((p) => p.id === id)?.status).toBe('approved');
  });

  it('refuses approving an expired proposal with 409 naming it', async () => {
    const { proposals } = await waitFor(expiring, (s) => s.proposals.some((p) => p.status === 'expired'));
    const id = proposals[0]!.id;
    const late = await call('POST', `/v1/approvals/${id}/approve`, {
      token: aliceExpiring.token,
      body: { reason: 'too late' },
    });
    expect(late.status).toBe(409);
    expect((await errorOf(late)).message).toMatch(new RegExp(`proposal ${id} expired at`));
    expect((await improvement.status(expiring)).current?.version).toBe(1);
  });

  it("reports the tenant's evaluation and runs a batch now, to operators only and never while paused", async () => {
    const read = async () => {
      const response = await call('GET', '/v1/evaluation', { token: alice.token });
      expect(response.status).toBe(200);
      return (await response.json()) as { tenant: string; setName: string; batches: number; phase: string };
    };
    const before = await read();
    expect(before).toMatchObject({ tenant, setName: 'sample-corpus' });
    for (const [method, route] of [
      ['GET', '/v1/evaluation'],
      ['POST', '/v1/evaluation/run'],
    ] as const) {
      const byApp = await call(method, route, { token: app.token });
      expect(byApp.status).toBe(403);
      expect((await errorOf(byApp)).message).toMatch(/lacks the operator scope/);
    }
    await ragline.client.evaluation.pause(tenant, 'sample-corpus');
    const paused = await call('POST', '/v1/evaluation/run', { token: alice.token });
    expect(paused.status).toBe(409);
    expect((await errorOf(paused)).message).toMatch(/paused by an operator/);
    await ragline.client.evaluation.resume(tenant, 'sample-corpus');
    expect((await read()).batches).toBe(before.batches);
    const run = await call('POST', '/v1/evaluation/run', { token: alice.token });
    expect(run.status).toBe(202);
    expect(await run.json()).toMatchObject({ tenant, setName: 'sample-corpus', batches: before.batches });
    const after = await waitUntil('the batch POST /v1/evaluation/run started', read, (s) => s.batches > before.batches);
    expect(after.batches).toBeGreaterThan(before.batches);

    const forged = await call('POST', '/v1/evaluation/run', { token: 'rgl_forged' });
    expect(forged.status).toBe(401);
    expect((await errorOf(forged)).message).toBe('invalid token');
    expect((await read()).batches).toBe(after.batches);

    const elsewhere = await call('GET', '/v1/evaluation', { token: aliceElsewhere.token });
    expect(elsewhere.status).toBe(404);
    expect((await errorOf(elsewhere)).message).toMatch(/no evaluation of set sample-corpus runs for tenant acme/);
    expect((await call('POST', '/v1/evaluation/run', { token: aliceElsewhere.token })).status).toBe(404);
    expect((await call('GET', `/v1/evaluation?tenant=${tenant}`, { token: aliceElsewhere.token })).status).toBe(403);
    const badSet = await call('GET', '/v1/evaluation?set=../etc', { token: alice.token });
    expect(badSet.status).toBe(400);
    expect((await errorOf(badSet)).message).toMatch(/querystring\.set/);
    expect((await call('GET', '/v1/evaluation?verbose=1', { token: alice.token })).status).toBe(400);
  });

  it("never reaches the evaluation of a tenant whose name extends the caller's", async () => {
    // With '-' joining tenant and set, tenant T asking for set eu-sample-corpus read tenant T-eu's sample-corpus.
    const response = await call('GET', '/v1/evaluation?set=eu-sample-corpus', { token: alice.token });
    expect(response.status).toBe(404);
    expect((await errorOf(response)).message).toMatch(new RegExp(`set eu-sample-corpus runs for tenant ${tenant};`));
    expect((await call('POST', '/v1/evaluation/run?set=eu-sample-corpus', { token: alice.token })).status).toBe(404);
    // T-eu's own operator does reach it.
    const own = await call('GET', '/v1/evaluation', { token: aliceEu.token });
    expect(own.status).toBe(200);
    expect(await own.json()).toMatchObject({ tenant: `${tenant}-eu`, setName: 'sample-corpus' });
  });

  it('publishes the operator routes in an OpenAPI document a real validator accepts', async () => {
    const doc = (await (await call('GET', '/openapi.json')).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    const validation = await new Validator().validate(doc as unknown as Parameters<Validator['validate']>[0]);
    expect(validation.errors).toBeUndefined();
    expect(validation.valid).toBe(true);
    expect(Object.keys(doc.paths['/v1/approvals/{id}/approve']?.post?.responses ?? {})).toEqual(
      expect.arrayContaining(['200', '403', '404', '409']),
    );
    expect(doc.paths['/v1/approvals']?.get).toBeDefined();
    expect(doc.paths['/v1/evaluation']?.get).toBeDefined();
    expect(doc.paths['/v1/evaluation/run']?.post).toBeDefined();
  });

  it("makes an operator's token with the CLI, and refuses a malformed operator name with exit code 2", async () => {
    const made = await runCli(['token', 'create', '--tenant', 'acme', '--operator', 'alice']);
    expect(made.code).toBe(0);
    const token = /token \(shown once, give it to the app\): (\S+)/.exec(made.stdout)?.[1];
    const entry = /RAGLINE_API_TOKENS \(comma-separated\): (\S+)/.exec(made.stdout)?.[1];
    expect(entry).toMatch(/^acme:[0-9a-f]{64}:operator=alice$/);
    const tokens = parseApiTokens(entry);
    expect(tokens[0]).toMatchObject({ tenant: 'acme', operator: 'alice' });
    expect(token).toMatch(/^rgl_/);
    const bad = await runCli(['token', 'create', '--tenant', 'acme', '--operator', 'alice smith']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/operator must be/);
  });

  it('makes scoped tokens with the CLI, and refuses an unknown scope, an impossible expiry and a past one', async () => {
    const ingest = await runCli(['token', 'create', '--tenant', 'acme', '--scope', 'query', '--scope', 'ingest']);
    expect(ingest.code).toBe(0);
    const entry = /RAGLINE_API_TOKENS \(comma-separated\): (\S+)/.exec(ingest.stdout)?.[1];
    expect(entry).toMatch(/^acme:[0-9a-f]{64}:scopes=query\+ingest$/);
    expect([...parseApiTokens(entry)[0]!.scopes].sort()).toEqual(['ingest', 'query']);
    const unknown = await runCli(['token', 'create', '--tenant', 'acme', '--scope', 'admin']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--scope must be one of query, ingest, operator, not admin/);
    const impossible = await runCli(['token', 'create', '--tenant', 'acme', '--expires', '2027-02-31']);
    expect(impossible.code).toBe(2);
    expect(impossible.stderr).toMatch(/real day/);
    const past = await runCli(['token', 'create', '--tenant', 'acme', '--expires', '2020-01-01']);
    expect(past.code).toBe(2);
    expect(past.stderr).toMatch(/2020-01-01 has passed/);
  });
});
