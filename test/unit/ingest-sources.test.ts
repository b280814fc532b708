import fs from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discoverSources, readDocuments, readFrom, START, type SourceFile } from '../../lib/ingest/sources.js';
import { tempDir } from '../support/ragline.js';

const jsonl = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) =>
    JSON.stringify({ _id: `d${from + i}`, title: 'T', text: `text ${from + i}` }),
  )
    .map((line) => `${line}\n`)
    .join('');

describe('discoverSources', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('ragline-sources-');
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('names Markdown and text documents by their path under the root, and reports an id taken twice', async () => {
    await fs.mkdir(path.join(dir, 'a'));
    await fs.mkdir(path.join(dir, 'b'));
    await fs.writeFile(path.join(dir, 'a', 'intro.md'), '# A\n\nalpha');
    await fs.writeFile(path.join(dir, 'b', 'intro.md'), '# B\n\nbeta');
    await fs.writeFile(path.join(dir, 'b', 'intro.txt'), 'beta as text');
    await fs.writeFile(path.join(dir, 'top.md'), '# Top');
    const { files, problems } = await discoverSources([dir]);
    expect(files.map((f) => f.docId)).toEqual(['a/intro', 'b/intro', 'top']);
    expect(problems).toEqual([
      {
        source: path.join(dir, 'b', 'intro.txt'),
        reason: expect.stringMatching(/"b\/intro" is already used by .*intro\.md/),
      },
    ]);
    const read = await readFrom(files[1]!, START, 10);
    expect(read.documents.map((d) => [d.id, d.title])).toEqual([['b/intro', 'B']]);
  });

  it('ends on a symlink loop and reports it', async () => {
    await fs.mkdir(path.join(dir, 'docs'));
    await fs.writeFile(path.join(dir, 'docs', 'x.md'), '# X');
    await fs.symlink(dir, path.join(dir, 'docs', 'loop'));
    const { files, problems } = await discoverSources([dir]);
    expect(files.map((f) => f.docId)).toEqual(['docs/x']);
    expect(problems).toEqual([
      { source: path.join(dir, 'docs', 'loop'), reason: expect.stringMatching(/already ingested .*symlink loop/) },
    ]);
  });

  it('skips and reports a file over the size cap, and a JSONL line over it', async () => {
    await fs.writeFile(path.join(dir, 'big.md'), `# Big\n\n${'x'.repeat(5000)}`);
    await fs.writeFile(path.join(dir, 'small.md'), '# Small');
    const long = JSON.stringify({ _id: 'long', text: 'y'.repeat(5000) });
    await fs.writeFile(path.join(dir, 'lines.jsonl'), `${jsonl(0, 1)}${long}\n${jsonl(2, 3)}`);
    const { files, problems } = await discoverSources([dir], { maxDocumentBytes: 2048 });
    expect(files.map((f) => path.basename(f.path))).toEqual(['lines.jsonl', 'small.md']);
    expect(problems).toEqual([{ source: path.join(dir, 'big.md'), reason: expect.stringMatching(/maximum is 2048/) }]);
    const read = await readFrom(files[0]!, START, 10, 2048);
    expect(read.documents.map((d) => d.id)).toEqual(['d0', 'd2']);
    expect(read.problems).toEqual([
      { source: `${files[0]!.path}:2`, reason: expect.stringMatching(/maximum is 2048/) },
    ]);
  });

  it('heartbeats while it walks a large tree', async () => {
    await fs.writeFile(path.join(dir, 'many.jsonl'), jsonl(0, 1000));
    const ticks: number[] = [];
    const { files } = await discoverSources([dir], { onProgress: (n) => ticks.push(n) });
    expect(files[0]!.documents).toBe(1000);
    expect(ticks.length).toBeGreaterThanOrEqual(3);
  });
});

describe('reading JSONL in batches', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('ragline-batches-');
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const readAll = async (file: SourceFile, batch: number, between?: (i: number) => Promise<void>) => {
    const ids: string[] = [];
    let position = START;
    for (let i = 0; ; i++) {
      const slice = await readFrom(file, position, batch);
      ids.push(...slice.documents.map((d) => d.id));
      position = slice.next;
      if (slice.exhausted) return { ids, position };
      await between?.(i);
    }
  };

  it('reads a plain file on from the byte where the previous batch stopped, never from the start', async () => {
    const file = path.join(dir, 'docs.jsonl');
    await fs.writeFile(file, jsonl(0, 10));
    const { ids, position } = await readAll({ path: file, kind: 'jsonl', documents: 10 }, 3, async (i) => {
      // Blank out everything already read: a reader that starts over and counts documents would now skip
      // different lines; one that seeks to its byte offset does not notice.
      if (i === 0) {
        const handle = await fs.open(file, 'r+');
        const first = Buffer.byteLength(jsonl(0, 3));
        await handle.write(Buffer.alloc(first, 0x0a), 0, first, 0);
        await handle.close();
      }
    });
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
    expect(position).toMatchObject({ doc: 10, line: 10 });
  });

  it('keeps a gzipped file open between batches instead of decompressing it again from the start', async () => {
    const file = path.join(dir, 'docs.jsonl.gz');
    await fs.writeFile(file, gzipSync(jsonl(0, 10)));
    // The file disappears after the first batch: only a reader kept open can still serve the later ones.
    const { ids } = await readAll({ path: file, kind: 'jsonl', documents: 10 }, 4, async (i) => {
      if (i === 0) await fs.rm(file);
    });
    expect(ids).toEqual(Array.from({ length: 10 }, (_, i) => `d${i}`));
  });

  it('resumes a gzipped file at a byte position with no reader kept (another worker, a restart)', async () => {
    const file = path.join(dir, 'docs.jsonl.gz');
    await fs.writeFile(file, gzipSync(`${jsonl(0, 5)}\n\n${jsonl(5, 9)}`));
    const source: SourceFile = { path: file, kind: 'jsonl', documents: 9 };
    const first = await readFrom(source, START, 6);
    const fresh = await readFrom({ ...source, path: `${dir}/../${path.basename(dir)}/docs.jsonl.gz` }, first.next, 100);
    expect(fresh.documents.map((d) => d.id)).toEqual(['d6', 'd7', 'd8']);
    expect(fresh.documents[0]!.source).toMatch(/:9$/);
    expect(fresh.exhausted).toBe(true);
  });

  it('still reads slices by document offset for runs started by older code', async () => {
    const file = path.join(dir, 'docs.jsonl');
    await fs.writeFile(file, jsonl(0, 10));
    const slice = await readDocuments({ path: file, kind: 'jsonl', documents: 10 }, 4, 3);
    expect(slice.documents.map((d) => d.id)).toEqual(['d4', 'd5', 'd6']);
  });
});
