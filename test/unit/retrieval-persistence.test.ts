import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorType } from '../../lib/errors.js';
import { EmbeddedStore, validateDocument } from '../../lib/retrieval/embedded-store.js';
import { makeDoc } from '../support/store-contract.js';

describe('EmbeddedStore persistence', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'ragline-persist-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('recovers from a torn journal tail, keeping every complete write', async () => {
    const store = await EmbeddedStore.open(dir);
    await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
    await store.upsertDocuments('acme', [makeDoc('b', 'B', ['beta'])]);
    await store.close();
    await appendFile(path.join(dir, 'index', 't_acme.journal.jsonl'), '{"corpusVersion":3,"op":"ups');

    const reopened = await EmbeddedStore.open(dir);
    expect(await reopened.stats('acme')).toEqual({ documents: 2, chunks: 2, corpusVersion: 2 });
    // Writes after recovery must survive another restart.
    await reopened.upsertDocuments('acme', [makeDoc('c', 'C', ['gamma'])]);
    await reopened.close();
    const again = await EmbeddedStore.open(dir);
    expect(await again.stats('acme')).toEqual({ documents: 3, chunks: 3, corpusVersion: 3 });
    await again.close();
  });

  it('folds the journal into a snapshot once it grows, without losing anything', async () => {
    const store = await EmbeddedStore.open(dir, { compactionBytes: 1 });
    for (let i = 0; i < 5; i++) await store.upsertDocuments('acme', [makeDoc(`d${i}`, 'D', [`text ${i}`])]);
    await store.deleteDocuments('acme', ['d0']);
    await store.close();
    const files = await readdir(path.join(dir, 'index'));
    expect(files.filter((file) => file.endsWith('.tmp'))).toEqual([]);
    const reopened = await EmbeddedStore.open(dir);
    expect(await reopened.stats('acme')).toEqual({ documents: 4, chunks: 4, corpusVersion: 6 });
    await reopened.close();
  });

  it('refuses an index written in another format version', async () => {
    const store = await EmbeddedStore.open(dir);
    await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
    await store.close();
    const snapshot = path.join(dir, 'index', 't_acme.snapshot.jsonl');
    const [header, ...rest] = (await readFile(snapshot, 'utf8')).split('\n');
    await writeFile(snapshot, [header!.replace('"formatVersion":1', '"formatVersion":99'), ...rest].join('\n'));
    await expect(EmbeddedStore.open(dir)).rejects.toMatchObject({ type: ErrorType.Configuration });
  });

  it('stores tenant names that are not file-safe', async () => {
    const store = await EmbeddedStore.open(dir);
    await store.upsertDocuments('../Évil/tenant', [makeDoc('a', 'A', ['alpha'])]);
    await store.close();
    expect((await readdir(path.join(dir, 'index'))).every((file) => /^[th]_[a-z0-9_-]+\./.test(file))).toBe(true);
    const reopened = await EmbeddedStore.open(dir);
    expect(await reopened.documentHash('../Évil/tenant', 'a')).toBeDefined();
    await reopened.close();
  });

  it('serialises concurrent writes to one tenant', async () => {
    const store = await EmbeddedStore.open(dir);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.upsertDocuments('acme', [makeDoc(`d${i}`, 'D', [`t${i}`])])),
    );
    expect(await store.stats('acme')).toEqual({ documents: 10, chunks: 10, corpusVersion: 10 });
    await store.close();
    const reopened = await EmbeddedStore.open(dir);
    expect((await reopened.stats('acme')).corpusVersion).toBe(10);
    await reopened.close();
  });
});

describe('validateDocument', () => {
  it('explains what is wrong, naming the document', () => {
    expect(validateDocument(makeDoc('ok', 'Ok', ['text']))).toBeUndefined();
    expect(validateDocument(makeDoc('blank', 'Blank', [' ', '\n']))).toMatch(/blank.*no text/);
    expect(validateDocument({ ...makeDoc('x', 'X', ['t']), chunks: [] })).toMatch(/no chunks/);
    const foreign = makeDoc('x', 'X', ['t']);
    foreign.chunks[0]!.docId = 'y';
    expect(validateDocument(foreign)).toMatch(/belongs to y/);
  });
});
