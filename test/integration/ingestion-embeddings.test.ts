import fs from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RaglineClient, type IngestProgressReport } from '../../client/ragline-client.js';
import { FakeEmbeddings, type EmbeddingFault } from '../support/fake-embeddings.js';
import { startRagline, tempDir, type TestRagline } from '../support/ragline.js';

/** A paragraph of about 550 characters about `topic`, with `marker` in it. */
const paragraph = (topic: string, marker = '') =>
  Array.from({ length: 10 }, (_, i) => `The ${topic} manual, part ${i}, explains ${topic} settings ${marker}.`).join(
    ' ',
  );

/** Ingestion through a real embeddings protocol server that is slow, picky or wrong in the ways real ones are. */
describe('ingestion with an embedder', () => {
  let ragline: TestRagline | undefined;
  let embeddings: FakeEmbeddings | undefined;
  let docsDir: string | undefined;
  afterEach(async () => {
    await ragline?.stop();
    await embeddings?.stop();
    if (docsDir) await fs.rm(docsDir, { recursive: true, force: true });
    ragline = embeddings = docsDir = undefined;
  });

  const corpus = async (docs: Record<string, string>) => {
    docsDir = await tempDir('ragline-embed-docs-');
    for (const [name, text] of Object.entries(docs)) await fs.writeFile(path.join(docsDir, `${name}.md`), text);
    return docsDir;
  };

  it('rejects by name each document the embedder answers unusable vectors for, and ingests the rest', async () => {
    const faults: Record<string, EmbeddingFault> = { nanmarker: 'nan', shortmarker: 'short', dimmarker: 'dimensions' };
    embeddings = await FakeEmbeddings.start({
      fault: (input) => Object.entries(faults).find(([marker]) => input.some((t) => t.includes(marker)))?.[1] ?? 'none',
    });
    ragline = await startRagline({ config: embeddings.config() });
    const dir = await corpus({
      widgets: paragraph('widget'),
      gadgets: paragraph('gadget'),
      sprockets: paragraph('sprocket'),
      poisoned: paragraph('lever', 'nanmarker'),
      truncated: paragraph('pulley', 'shortmarker'),
      oversized: paragraph('gear', 'dimmarker'),
    });
    const result = await ragline.ingest([dir]);
    expect(result).toMatchObject({ added: 3, rejected: 3 });
    const reasons = Object.fromEntries(result.problems.map((p) => [path.basename(p.source, '.md'), p.reason]));
    expect(Object.keys(reasons).sort()).toEqual(['oversized', 'poisoned', 'truncated']);
    expect(reasons['poisoned']).toMatch(/embedding 1 documents \(poisoned\).*NaN/);
    expect(reasons['truncated']).toMatch(/\(truncated\).*0 vectors for 1 texts/);
    expect(reasons['oversized']).toMatch(/\(oversized\).*17 dimensions; expected 16/);

    const store = ragline.runtime.deps.store;
    expect((await store.stats('default')).documents).toBe(3);
    const found = await store.search('default', { query: 'gadget settings', topK: 3 });
    // The dense leg answers: every stored chunk has its vector.
    expect(found.degradedReason).toBeUndefined();
    expect(found.hits[0]?.docId).toBe('gadgets');
    expect((await store.search('default', { query: 'lever manual', topK: 10 })).hits.map((h) => h.docId)).not.toContain(
      'poisoned',
    );
  });

  it('halves requests the embedder refuses as too large until they fit, losing nothing', async () => {
    const limit = 2500;
    embeddings = await FakeEmbeddings.start({
      fault: (input) => (input.reduce((sum, text) => sum + text.length, 0) > limit ? 'too-large' : 'none'),
    });
    ragline = await startRagline({ config: embeddings.config() });
    const topics = ['widget', 'gadget', 'sprocket', 'lever', 'pulley', 'gear', 'spring', 'valve'];
    const result = await ragline.ingest([await corpus(Object.fromEntries(topics.map((t) => [t, paragraph(t)])))]);
    expect(result).toMatchObject({ added: 8, rejected: 0 });
    const sizes = embeddings.requests.map((input) => input.join('').length);
    expect(Math.max(...sizes)).toBeGreaterThan(limit);
    const answered = sizes.filter((size) => size <= limit);
    expect(answered.length).toBeGreaterThan(1);
    const found = await ragline.runtime.deps.store.search('default', { query: 'valve settings', topK: 1 });
    expect(found.degradedReason).toBeUndefined();
    expect(found.hits[0]?.docId).toBe('valve');
  });

  it('shows chunks embedded within a batch while it runs, and a retried batch re-embeds only what is missing', async () => {
    // One chunk a request, 3 ms a character: each request takes about two seconds, the batch about twenty.
    let failAfter = 5;
    embeddings = await FakeEmbeddings.start({
      msPerChar: 3,
      fault: () => (failAfter-- === 0 ? 'nan' : 'none'),
    });
    ragline = await startRagline({ config: { ...embeddings.config(), RAGLINE_EMBEDDING_BATCH_SIZE: '1' } });
    const topics = ['widget', 'gadget', 'sprocket', 'lever', 'pulley', 'gear', 'spring', 'valve'];
    const dir = await corpus(Object.fromEntries(topics.map((t) => [t, paragraph(t)])));
    const client = new RaglineClient(ragline.env.client, ragline.taskQueue, { maxQueryChars: 4000 });
    const reports: IngestProgressReport[] = [];
    const result = await client.ingest([dir], { onProgress: (p) => reports.push(p), pollMs: 200 });
    expect(result).toMatchObject({ added: 8, rejected: 0 });
    const within = reports.flatMap((r) => (r.batch ? [r.batch] : []));
    // Part way through the batch of eight documents and their eight chunks, before the failure.
    expect(
      within.some((b) => b.documents === 8 && b.chunksTotal === 8 && b.chunksEmbedded > 0 && b.chunksEmbedded < 8),
    ).toBe(true);
    // The sixth request came back NaN: the batch was tried document by document, and only the document whose
    // vector was missing went to the embedder again.
    const sent = embeddings.requests.flat();
    expect(sent.length).toBe(9);
    expect(new Set(sent).size).toBe(8);
  });
});
