import { spawnSync } from 'node:child_process';
import { appendFile, mkdtemp, open, readdir, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
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

  /** Opens journals for real, but the next append fails as scripted: part-written, or written and not synced. */
  const faultyDisk = () => {
    const plan: Array<'torn' | 'unsynced'> = [];
    const openJournal = async (file: string): Promise<FileHandle> => {
      const handle = await open(file, 'a');
      const fault = plan.shift();
      if (!fault) return handle;
      return new Proxy(handle, {
        get(target, prop, receiver) {
          if (prop === 'write' && fault === 'torn') {
            return async (line: string) => {
              await target.write(line.slice(0, Math.floor(line.length / 2)));
              throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
            };
          }
          if (prop === 'datasync' && fault === 'unsynced') {
            return async () => {
              throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
            };
          }
          const value = Reflect.get(target, prop, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    };
    return { plan, openJournal };
  };

  it.each(['torn', 'unsynced'] as const)(
    'a %s append that failed, then more writes, then a reload: exactly the acknowledged writes survive',
    async (fault) => {
      const disk = faultyDisk();
      const store = await EmbeddedStore.open(dir, { openJournal: disk.openJournal });
      await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
      disk.plan.push(fault);
      await expect(store.upsertDocuments('acme', [makeDoc('b', 'B', ['beta'])])).rejects.toThrow(/EIO/);
      expect(await store.documentHash('acme', 'b')).toBeUndefined();
      await store.upsertDocuments('acme', [makeDoc('c', 'C', ['gamma'])]);
      await store.upsertDocuments('acme', [makeDoc('d', 'D', ['delta'])]);
      await store.deleteDocuments('acme', ['a']);
      const live = await store.stats('acme');
      await store.close();

      const reopened = await EmbeddedStore.open(dir);
      expect(await reopened.stats('acme')).toEqual(live);
      expect(await reopened.documentHash('acme', 'b')).toBeUndefined();
      for (const id of ['c', 'd']) expect(await reopened.documentHash('acme', id)).toBeDefined();
      expect(await reopened.documentHash('acme', 'a')).toBeUndefined();
      await reopened.close();
    },
  );

  it('never gives two journal records the same corpus version, even across a failed write', async () => {
    const disk = faultyDisk();
    const store = await EmbeddedStore.open(dir, { openJournal: disk.openJournal, compactionBytes: 1 << 30 });
    await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
    disk.plan.push('unsynced');
    await expect(store.upsertDocuments('acme', [makeDoc('b', 'B', ['beta'])])).rejects.toThrow(/EIO/);
    await store.upsertDocuments('acme', [makeDoc('c', 'C', ['gamma'])]);
    await store.upsertDocuments('acme', [makeDoc('d', 'D', ['delta'])]);
    await store.close();
    const journal = await readFile(path.join(dir, 'index', 't_acme.journal.jsonl'), 'utf8');
    const versions = journal
      .split('\n')
      .filter(Boolean)
      .map((line) => (JSON.parse(line.slice(line.indexOf('{'))) as { corpusVersion: number }).corpusVersion);
    expect(versions.length).toBeGreaterThan(0);
    for (let i = 1; i < versions.length; i++) expect(versions[i]).toBeGreaterThan(versions[i - 1]!);
  });

  it('skips a torn record in the middle of the journal and keeps every record after it', async () => {
    const store = await EmbeddedStore.open(dir, { compactionBytes: 1 << 30 });
    for (const id of ['a', 'b', 'c']) await store.upsertDocuments('acme', [makeDoc(id, id, [`text ${id}`])]);
    await store.close();
    const file = path.join(dir, 'index', 't_acme.journal.jsonl');
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    expect(lines).toHaveLength(3);
    // What a crash of an OS that reordered writes, or a bad sector, leaves: record 2 cut short, record 3 intact.
    await writeFile(file, [lines[0], lines[1]!.slice(0, 40), lines[2]].join('\n') + '\n');
    const reopened = await EmbeddedStore.open(dir);
    expect(await reopened.documentHash('acme', 'b')).toBeUndefined();
    expect(await reopened.documentHash('acme', 'c')).toBeDefined();
    expect((await reopened.stats('acme')).corpusVersion).toBe(3);
    await reopened.close();
  });

  it('recovers a tenant that has only a journal', async () => {
    const store = await EmbeddedStore.open(dir, { compactionBytes: 1 << 30 });
    await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
    await store.upsertDocuments('acme', [makeDoc('b', 'B', ['beta'])]);
    await store.close();
    await rm(path.join(dir, 'index', 't_acme.snapshot.jsonl'), { force: true });
    const reopened = await EmbeddedStore.open(dir);
    expect(await reopened.stats('acme')).toEqual({ documents: 2, chunks: 2, corpusVersion: 2 });
    await reopened.close();
  });

  it('lets one process own a data dir, with an error that says which and what to do', async () => {
    const store = await EmbeddedStore.open(dir);
    const error = await EmbeddedStore.open(dir).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: ErrorType.Configuration });
    expect(String((error as Error).message)).toMatch(new RegExp(`in use by process ${process.pid}.*RAGLINE_DATA_DIR`));
    await store.close();
    const next = await EmbeddedStore.open(dir);
    await next.close();
  });

  it('takes over the lock file of a process that is gone', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    await writeFile(
      path.join(dir, 'ragline.lock'),
      JSON.stringify({ pid: gone, hostname: (await import('node:os')).hostname(), token: 'old' }),
    );
    const store = await EmbeddedStore.open(dir);
    await store.upsertDocuments('acme', [makeDoc('a', 'A', ['alpha'])]);
    await store.close();
  });

  it('leaves nothing behind for a tenant it was only asked about', async () => {
    const store = await EmbeddedStore.open(dir);
    expect(await store.deleteDocuments('nobody', ['x'])).toEqual({ deleted: [], missing: ['x'] });
    expect((await store.health()).detail).toMatch(/^0 tenants/);
    await store.close();
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
    // A tiny compaction threshold makes the first write produce a snapshot, the file that carries the format.
    const store = await EmbeddedStore.open(dir, { compactionBytes: 1 });
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
