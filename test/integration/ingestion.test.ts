import fs from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import {
  answerQueryWorkflow,
  deleteDocumentsWorkflow,
  describeCorpusWorkflow,
  ingestDocumentsWorkflow,
} from '../../workflows/index.js';
import { getIngestProgressQuery } from '../../contracts/ingest.js';
import { startRagline, tempDir, type TestRagline } from '../support/ragline.js';

describe('ingestion workflow', () => {
  let ragline: TestRagline;
  let docsDir: string;

  /**
   * A folder of four documents and four bad entries. Each test ingests its own copy into a tenant of its own, so it
   * needs no earlier test and runs alone (`-t`) as it does in the file.
   */
  const writeDocs = async () => {
    const docsDir = await tempDir('ragline-docs-');
    await fs.writeFile(
      path.join(docsDir, 'widgets.md'),
      '# Widgets\n\nA widget spins at 300 rpm when the flux capacitor is engaged.\n',
    );
    await fs.writeFile(path.join(docsDir, 'gadgets.txt'), 'Gadgets are charged through the blue port for six hours.\n');
    await fs.writeFile(
      path.join(docsDir, 'extra.jsonl'),
      [
        JSON.stringify({ _id: 'j1', title: 'Sprockets', text: 'Sprockets need oiling every fortnight.' }),
        '{ this is not json',
        JSON.stringify({ _id: 'j2', title: 'Empty', text: '   ' }),
        JSON.stringify({ _id: 'j3', title: 'Levers', text: 'Levers multiply force around a fulcrum.' }),
      ].join('\n'),
    );
    await fs.writeFile(path.join(docsDir, 'diagram.bmp'), 'not a document');
    return docsDir;
  };
  const newTenant = () => `t${randomUUID().slice(0, 8)}`;

  beforeAll(async () => {
    ragline = await startRagline();
    docsDir = await writeDocs();
  });
  afterAll(async () => {
    await ragline?.stop();
    if (docsDir) await fs.rm(docsDir, { recursive: true, force: true });
  });

  const ingest = (paths: string[], tenant?: string) =>
    ragline.env.client.workflow.execute(ingestDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `ingest-${randomUUID()}`,
      args: [{ paths, tenant }],
    });
  const ask = (query: string, tenant?: string) =>
    ragline.env.client.workflow.execute(answerQueryWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `query-${randomUUID()}`,
      args: [{ query, tenant }],
    });

  it('ingests the good documents of a batch and reports each bad one', async () => {
    const result = await ingest([docsDir, path.join(docsDir, 'missing.md')], newTenant());
    expect(result.added).toBe(4);
    expect(result.rejected).toBe(4);
    const reasons = result.problems.map((p) => `${path.basename(p.source)} ${p.reason}`);
    expect(reasons).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^extra\.jsonl:2 malformed JSON/),
        expect.stringMatching(/^extra\.jsonl:3 .*no text/),
        expect.stringMatching(/^diagram\.bmp unknown file type/),
        expect.stringMatching(/^missing\.md no such file/),
      ]),
    );
  });

  it('rejects a document whose id or title is over its limit and ingests the rest of the batch', async () => {
    const dir = await tempDir('ragline-docs-');
    await fs.writeFile(
      path.join(dir, 'big.jsonl'),
      [
        JSON.stringify({ _id: 'ok-1', title: 'Cogs', text: 'Cogs mesh with other cogs.' }),
        JSON.stringify({ _id: 'i'.repeat(1024 * 1024), title: 'Huge id', text: 'An id a megabyte long.' }),
        JSON.stringify({ _id: 'big-title', title: 'T'.repeat(1024 * 1024), text: 'A title a megabyte long.' }),
        JSON.stringify({ _id: 'ok-2', title: 'Belts', text: 'Belts carry power between pulleys.' }),
      ].join('\n'),
    );
    const tenant = newTenant();
    const result = await ingest([dir], tenant);
    expect(result).toMatchObject({ added: 2, rejected: 2 });
    const reasons = result.problems.map((p) => `${path.basename(p.source)} ${p.reason}`);
    expect(reasons).toEqual([
      expect.stringMatching(
        /^big\.jsonl:2 document id i{60}… \(1048576 characters\) is 1048576 bytes; the maximum is 512$/,
      ),
      'big.jsonl:3 document big-title: title is 1048576 bytes; the maximum is 1024',
    ]);
    const answer = await ask('What carries power between pulleys?', tenant);
    expect(answer.sources.map((s) => s.docId)).toContain('ok-2');
  });

  it('is idempotent: ingesting the same folder again changes nothing', async () => {
    const tenant = newTenant();
    const before = await ingest([docsDir], tenant);
    const again = await ingest([docsDir], tenant);
    expect(again.added).toBe(0);
    expect(again.updated).toBe(0);
    expect(again.unchanged).toBe(4);
    expect(again.corpusVersion).toBe(before.corpusVersion);
  });

  it('replaces the chunks of a changed document and drops the cached answers that cited it', async () => {
    // Its own copy of the folder: this test changes a document.
    const [tenant, ownDocs] = [newTenant(), await writeDocs()];
    expect((await ingest([ownDocs], tenant)).added).toBe(4);
    const first = await ask('How fast does a widget spin?', tenant);
    expect(first.answer).toContain('300 rpm');
    expect((await ask('How fast does a widget spin?', tenant)).cache.result).toBe('hit');

    await fs.writeFile(
      path.join(ownDocs, 'widgets.md'),
      '# Widgets\n\nA widget spins at 450 rpm since the 2026 redesign.\n',
    );
    const result = await ingest([ownDocs], tenant);
    expect(result.updated).toBe(1);
    expect(result.unchanged).toBe(3);

    const after = await ask('How fast does a widget spin?', tenant);
    expect(after.cache.result).toBe('miss');
    expect(after.answer).toContain('450 rpm');
    expect(after.answer).not.toContain('300 rpm');
    await fs.rm(ownDocs, { recursive: true, force: true });
  });

  it('keeps tenants apart', async () => {
    const [home, acme] = [newTenant(), newTenant()];
    expect((await ingest([docsDir], home)).added).toBe(4);
    const other = await ingest([path.join(docsDir, 'gadgets.txt')], acme);
    expect(other.added).toBe(1);
    const answer = await ask('How long do gadgets charge?', acme);
    expect(answer.sources.map((s) => s.docId)).toEqual(['gadgets']);
    const none = await ask('How fast does a widget spin?', acme);
    expect(none.sources.map((s) => s.docId)).not.toContain('widgets');
  });

  it('deletes documents, and a deleted document is no longer a source', async () => {
    const tenant = newTenant();
    expect((await ingest([docsDir], tenant)).added).toBe(4);
    const deleted = await ragline.env.client.workflow.execute(deleteDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `delete-${randomUUID()}`,
      args: [{ tenant, docIds: ['j3', 'nope'] }],
    });
    expect(deleted.deleted).toEqual(['j3']);
    expect(deleted.missing).toEqual(['nope']);
    const answer = await ask('What do levers multiply?', tenant);
    expect(answer.sources.map((s) => s.docId)).not.toContain('j3');
  });

  it('exposes progress through a workflow query', async () => {
    const handle = await ragline.env.client.workflow.start(ingestDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `ingest-${randomUUID()}`,
      args: [{ paths: [docsDir], tenant: newTenant() }],
    });
    await handle.result();
    const progress = await handle.query(getIngestProgressQuery);
    expect(progress.phase).toBe('done');
    expect(progress.documentsDone).toBe(progress.documentsTotal);
    // widgets.md, gadgets.txt and the four lines of extra.jsonl, bad ones included.
    expect(progress.documentsTotal).toBe(6);
  });

  it('fails with a typed error when given no paths', async () => {
    const error = await ingest([]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
  });

  const run = <T>(workflow: (input: T) => Promise<unknown>, input: T) =>
    ragline.env.client.workflow.execute(workflow as (input: T) => Promise<unknown>, {
      taskQueue: ragline.taskQueue,
      workflowId: `wf-${randomUUID()}`,
      args: [input],
    });

  it('keeps same-named files in different folders apart and reports ids taken twice', async () => {
    const root = await tempDir('ragline-ids-');
    await fs.mkdir(path.join(root, 'a'));
    await fs.mkdir(path.join(root, 'b'));
    await fs.writeFile(path.join(root, 'a', 'intro.md'), '# Intro A\n\nThe aardvark hums at dawn.');
    await fs.writeFile(path.join(root, 'b', 'intro.md'), '# Intro B\n\nThe bumblebee naps at noon.');
    await fs.writeFile(path.join(root, 'b', 'intro.txt'), 'A second intro under the same id.');
    await fs.symlink(root, path.join(root, 'b', 'loop'));
    const result = await ingest([root], 'ids');
    expect(result.added).toBe(2);
    expect(result.problems.map((p) => p.reason)).toEqual([
      expect.stringMatching(/"b\/intro" is already used/),
      expect.stringMatching(/symlink loop/),
    ]);
    const answer = await ask('When does the bumblebee nap?', 'ids');
    expect(answer.sources.map((s) => s.docId)).toContain('b/intro');
    await fs.rm(root, { recursive: true, force: true });
  });

  it('continues as new between batches and ends with every document and the totals of all runs', async () => {
    const root = await tempDir('ragline-can-');
    const lines = Array.from({ length: 9 }, (_, i) =>
      JSON.stringify({ _id: `c${i}`, title: `Cog ${i}`, text: `Cog number ${i} turns the wheel.` }),
    );
    lines.splice(4, 0, '{ broken');
    await fs.writeFile(path.join(root, 'cogs.jsonl.gz'), gzipSync(lines.join('\n')));
    const result = await ragline.env.client.workflow.execute(ingestDocumentsWorkflow, {
      taskQueue: ragline.taskQueue,
      workflowId: `ingest-${randomUUID()}`,
      args: [{ paths: [root], tenant: 'cogs', batchSize: 3, batchesPerRun: 2 }],
    });
    expect(result).toMatchObject({ added: 9, rejected: 1, documentsDone: 10, documentsTotal: 10, runs: 2 });
    expect(result.problems).toEqual([
      { source: expect.stringMatching(/cogs\.jsonl\.gz:5$/), reason: 'malformed JSON' },
    ]);
    // The file list lived in the data dir for the run only.
    expect(await fs.readdir(path.join(ragline.dataDir, 'ingest'))).toEqual([]);
    await fs.rm(root, { recursive: true, force: true });
  });

  it.each([0, -1, 1.5, 100_000])('refuses batchSize %s before doing anything', async (batchSize) => {
    const error = await ragline.env.client.workflow
      .execute(ingestDocumentsWorkflow, {
        taskQueue: ragline.taskQueue,
        workflowId: `ingest-${randomUUID()}`,
        args: [{ paths: [docsDir], batchSize }],
      })
      .catch((e: unknown) => e);
    expect((error as WorkflowFailedError).cause).toMatchObject({
      type: 'InvalidInput',
      message: expect.stringMatching(/batchSize/),
    });
  });

  it('refuses an invalid tenant in the delete and describe workflows', async () => {
    for (const error of [
      await run(deleteDocumentsWorkflow, { tenant: '../etc', docIds: ['x'] }).catch((e: unknown) => e),
      await run(describeCorpusWorkflow, { tenant: 'a b' }).catch((e: unknown) => e),
    ]) {
      expect((error as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    }
    expect((await ragline.runtime.deps.store.health()).detail).not.toMatch(/etc/);
  });
});
