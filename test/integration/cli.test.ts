import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as ragline } from '../support/cli.js';
import { freePort } from '../support/redis.js';
import { startRagline, tempDir, type TestRagline } from '../support/ragline.js';

describe('ragline CLI', () => {
  let ragline_: TestRagline;
  let env: Record<string, string>;
  let docs: string;

  beforeAll(async () => {
    ragline_ = await startRagline();
    env = { TEMPORAL_ADDRESS: ragline_.env.address, RAGLINE_TASK_QUEUE: ragline_.taskQueue };
    docs = await tempDir('ragline-cli-docs-');
    await fs.writeFile(
      path.join(docs, 'faq.jsonl'),
      [
        JSON.stringify({ _id: 'faq-1', title: 'Refunds', text: 'Refunds are issued within 14 days of a request.' }),
        '{oops',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await ragline_?.stop();
    if (docs) await fs.rm(docs, { recursive: true, force: true });
  });

  it('rejects bad input with one line and exit code 2, before contacting any server', async () => {
    const nowhere = { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` };
    const empty = await ragline(['ask', '   '], nowhere);
    expect(empty).toMatchObject({ code: 2, stdout: '', stderr: 'ragline: query is empty\n' });
    const long = await ragline(['ask', 'x'.repeat(4001)], nowhere);
    expect(long.code).toBe(2);
    expect(long.stderr).toMatch(/^ragline: query is 4001 characters long; the maximum is 4000\n$/);
    const missing = await ragline(['ingest', '/no/such/folder'], nowhere);
    expect(missing).toMatchObject({ code: 2, stderr: 'ragline: no such file or directory: /no/such/folder\n' });
    const badConfig = await ragline(['ask', 'hello'], { ...nowhere, RAGLINE_TOP_K: 'lots' });
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toMatch(/^ragline: invalid configuration: RAGLINE_TOP_K: /);
  });

  it('says clearly when no Temporal server is reachable', async () => {
    const port = await freePort();
    const run = await ragline(['ask', 'hello'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`ragline: no Temporal server at 127.0.0.1:${port}`);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('ingests, reports the rejected line with exit code 3, and answers with the document as a source', async () => {
    const ingest = await ragline(['ingest', docs, '--json'], env);
    expect(ingest.code).toBe(3);
    const summary = JSON.parse(ingest.stdout) as {
      added: number;
      rejected: number;
      problems: Array<{ source: string }>;
    };
    expect(summary).toMatchObject({ added: 1, rejected: 1 });
    expect(summary.problems[0]?.source).toMatch(/faq\.jsonl:2$/);

    const ask = await ragline(['ask', 'How long do refunds take?', '--json'], env);
    expect(ask.code).toBe(0);
    const result = JSON.parse(ask.stdout) as { sources: Array<{ docId: string }>; answer: string; queryId: string };
    expect(result.sources.map((s) => s.docId)).toEqual(['faq-1']);
    expect(result.answer).toContain('14 days');

    const readable = await ragline(['ask', 'How long do refunds take?'], env);
    expect(readable.stdout).toMatch(/14 days[^\n]*\[1\]/);
    expect(readable.stdout).toContain('[1] Refunds (faq-1');
    expect(readable.stdout).toContain('cache hit');
  });

  it('sets, refuses and rolls back parameters, refuses bad approvals and unknown feedback, with clear exit codes', async () => {
    const ops = { ...env, RAGLINE_APPROVERS: 'alice', RAGLINE_OPERATOR: 'alice', RAGLINE_DEFAULT_TENANT: 'clitenant' };
    expect((await ragline(['improve', 'start'], ops)).stdout).toBe(
      'improvement workflow improve:clitenant is running\n',
    );
    expect(await ragline(['params', 'set', 'topK=3', '--reason', 'fewer sources'], ops)).toMatchObject({
      code: 0,
      stdout: 'version 0 → 1: {"topK":[5,3]}\n',
    });
    expect(await ragline(['params', 'set', 'bm25B=3', '--reason', 'x'], ops)).toMatchObject({
      code: 2,
      stderr: 'ragline: bm25B=3 is outside its bounds [0, 1]\n',
    });
    expect(await ragline(['params', 'rollback', '--reason', 'undo'], ops)).toMatchObject({
      code: 0,
      stdout: 'rolled back: version 1 → 0\n',
    });
    const unknown = await ragline(['approvals', 'approve', 'p9', '--reason', 'ok'], ops);
    expect(unknown).toMatchObject({ code: 2, stderr: 'ragline: unknown proposal p9\n' });
    const feedback = await ragline(['feedback', 'query-nobody-asked', '4'], ops);
    expect(feedback).toMatchObject({ code: 1, stderr: 'ragline: no logged query with id query-nobody-asked\n' });
  }, 180_000);

  it('deletes a document by id', async () => {
    // Its own document (ingesting again changes nothing when an earlier test did): the test runs alone too.
    expect((await ragline(['ingest', docs], env)).code).toBe(3);
    const run = await ragline(['docs', 'delete', 'faq-1', `missing-${randomUUID()}`, '--json'], env);
    expect(run.code).toBe(3);
    expect(JSON.parse(run.stdout)).toMatchObject({ deleted: ['faq-1'] });
  });
});
