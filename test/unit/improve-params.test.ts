import { appendFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskAuditBackend, ParamStore } from '../../lib/improve/param-store.js';
import { expectConcurrentChangesSerialised } from '../support/param-store-contract.js';
import {
  DEFAULT_PARAMS,
  TUNED_PARAMS,
  candidateParams,
  isSmallChange,
  paramsProblem,
  tunedParams,
} from '../../lib/improve/params.js';
import { resultKey } from '../../lib/cache/keys.js';
import { compareScores, beatsNoise } from '../../lib/improve/shadow.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { tempDir } from '../support/ragline.js';

describe('retrieval parameters', () => {
  it('names every parameter outside its bounds, and unknown ones', () => {
    expect(paramsProblem({ topK: 0, bm25B: 1.2, titleWeight: 2 })).toBe(
      'topK=0 is outside its bounds [1, 20]; bm25B=1.2 is outside its bounds [0, 1]',
    );
    expect(paramsProblem({ topK: 2.5 })).toBe('topK must be an integer');
    expect(paramsProblem({ temperature: 1 })).toMatch(/unknown parameter temperature/);
    expect(paramsProblem({ topK: 8, bm25K1: 0.9 })).toBeUndefined();
  });

  it('tells small changes (auto-applied) from large ones (approval)', () => {
    expect(isSmallChange(DEFAULT_PARAMS, { ...DEFAULT_PARAMS, topK: 7 })).toBe(true);
    expect(isSmallChange(DEFAULT_PARAMS, { ...DEFAULT_PARAMS, topK: 10 })).toBe(false);
    expect(isSmallChange(DEFAULT_PARAMS, { ...DEFAULT_PARAMS, bm25B: 0.6 })).toBe(true);
    expect(isSmallChange(DEFAULT_PARAMS, { ...DEFAULT_PARAMS, bm25B: 0.6 }, 0)).toBe(false);
  });

  it('proposes one parameter at a time over its grid, never the current set', () => {
    const candidates = candidateParams(DEFAULT_PARAMS);
    expect(
      candidates.every(
        (c) => Object.keys(c).filter((k) => c[k as 'topK'] !== DEFAULT_PARAMS[k as 'topK']).length === 1,
      ),
    ).toBe(true);
    expect(candidates.some((c) => c.topK === 10)).toBe(true);
    expect(candidates).not.toContainEqual(DEFAULT_PARAMS);
  });

  it('tunes only what the serving store lets change a ranking', () => {
    expect(tunedParams({ store: 'embedded', dense: false, fusion: 'weighted' })).toEqual(TUNED_PARAMS);
    expect(tunedParams({ store: 'embedded', dense: true, fusion: 'weighted' })).toEqual([
      ...TUNED_PARAMS,
      'fusionWeight',
    ]);
    expect(tunedParams({ store: 'embedded', dense: true, fusion: 'rrf' })).toEqual([...TUNED_PARAMS, 'rrfK']);
    // Qdrant computes BM25 itself and always fuses by RRF.
    expect(tunedParams({ store: 'qdrant', dense: false, fusion: 'weighted' })).toEqual(['topK']);
    expect(tunedParams({ store: 'qdrant', dense: true, fusion: 'weighted' })).toEqual(['topK', 'rrfK']);
    const withFusion = { ...DEFAULT_PARAMS, fusionWeight: 0.7, rrfK: 60 };
    const candidates = candidateParams(withFusion, ['fusionWeight']);
    expect(candidates.map((c) => c.fusionWeight)).toEqual([0.1, 0.3, 0.5, 0.9]);
    expect(candidates.every((c) => paramsProblem(c as unknown as Record<string, unknown>) === undefined)).toBe(true);
    expect(paramsProblem({ fusionWeight: 1.5, rrfK: 0 })).toBe(
      'fusionWeight=1.5 is outside its bounds [0, 1]; rrfK=0 is outside its bounds [1, 200]',
    );
  });

  it('keeps version-0 result keys as they were and gives every other version its own', () => {
    const scope = { tenant: 'acme', corpusVersion: 3, topK: 5, generatorModel: 'extractive' };
    expect(resultKey({ ...scope, paramsVersion: undefined }, 'q')).toBe(resultKey(scope, 'q'));
    expect(resultKey({ ...scope, paramsVersion: 1 }, 'q')).not.toBe(resultKey(scope, 'q'));
    expect(resultKey({ ...scope, paramsVersion: 1 }, 'q')).not.toBe(resultKey({ ...scope, paramsVersion: 2 }, 'q'));
  });

  it('counts a gain only when it is larger than two standard errors of the paired differences', () => {
    const before = Array.from({ length: 100 }, () => 0.5);
    const oneQuestion = [...before];
    oneQuestion[0] = 1;
    expect(beatsNoise(compareScores(before, oneQuestion))).toBe(false);
    const broad = before.map((v, i) => v + (i % 2 === 0 ? 0.1 : 0.05));
    expect(beatsNoise(compareScores(before, broad))).toBe(true);
  });
});

describe('parameter store', () => {
  it('reads a version written before a parameter existed with the configured value for it', async () => {
    const backend = new DiskAuditBackend(await tempDir());
    const { fusionWeight: _absent, ...older } = { ...DEFAULT_PARAMS, fusionWeight: 0.7 };
    await backend.appendAt(
      'acme',
      {
        seq: 1,
        at: new Date().toISOString(),
        actor: 'alice',
        action: 'apply',
        reason: 'before fusion weights were versioned',
        fromVersion: 0,
        toVersion: 1,
        params: { ...older, topK: 8 },
        changes: { topK: [5, 8] },
      },
      0,
    );
    const store = new ParamStore(backend, { ...DEFAULT_PARAMS, fusionWeight: 0.7 }, 0);
    expect((await store.current('acme')).params).toMatchObject({ topK: 8, fusionWeight: 0.7 });
  });

  it('versions, audits and rolls back; a refused change writes nothing', async () => {
    const store = new ParamStore(new DiskAuditBackend(await tempDir()), DEFAULT_PARAMS, 0);
    expect(await store.current('acme')).toEqual({ version: 0, params: DEFAULT_PARAMS });
    await expect(
      store.apply('acme', { params: { ...DEFAULT_PARAMS, bm25B: 2 }, actor: 'alice', action: 'apply', reason: 'x' }),
    ).rejects.toThrow(/bm25B=2/);
    expect(await store.history('acme')).toEqual([]);
    await expect(store.rollback('acme', 'alice', 'nothing yet')).rejects.toThrow(/no version to roll back/);

    const v1 = await store.apply('acme', {
      params: { ...DEFAULT_PARAMS, topK: 3 },
      actor: 'alice',
      action: 'apply',
      reason: 'a',
    });
    const v2 = await store.apply('acme', {
      params: { ...DEFAULT_PARAMS, topK: 8 },
      actor: 'bob',
      action: 'apply',
      reason: 'b',
    });
    expect([v1.toVersion, v2.toVersion]).toEqual([1, 2]);
    expect(v2.changes).toEqual({ topK: [3, 8] });
    expect(await store.current('other')).toEqual({ version: 0, params: DEFAULT_PARAMS });

    const back = await store.rollback('acme', 'carol', 'v2 hurt');
    expect(back).toMatchObject({ action: 'rollback', fromVersion: 2, toVersion: 1, actor: 'carol' });
    expect((await store.current('acme')).params.topK).toBe(3);
    expect((await store.rollback('acme', 'carol', 'again')).toVersion).toBe(0);
    const v3 = await store.apply('acme', { params: DEFAULT_PARAMS, actor: 'alice', action: 'apply', reason: 'c' });
    expect(v3.toVersion).toBe(3);
  });
});

describe('BM25 parameters per search', () => {
  const doc = (docId: string, title: string, text: string) => ({
    docId,
    title,
    contentHash: docId,
    chunks: [{ id: `${docId}#0`, docId, title, text, position: 0 }],
  });

  it('ranks with the parameters a search carries, and never returns a NaN score when b is 1', async () => {
    const store = await EmbeddedStore.open(await tempDir());
    // The first document's body analyses to no term at all: with b = 1 its body norm is 0.
    await store.upsertDocuments('t', [doc('a', 'zebra', 'the of and'), doc('b', 'stripes', 'zebra zebra stripes')]);
    const top = await store.search('t', { query: 'zebra', topK: 1, bm25: { b: 1 } });
    expect(top.hits).toHaveLength(1);
    expect(Number.isFinite(top.hits[0]!.score)).toBe(true);
    const noTitle = await store.search('t', { query: 'zebra', topK: 2, bm25: { titleWeight: 0 } });
    expect(noTitle.hits[0]?.docId).toBe('b');
    const heavyTitle = await store.search('t', { query: 'zebra', topK: 2, bm25: { titleWeight: 10 } });
    expect(heavyTitle.hits[0]?.docId).toBe('a');
  });

  it('keeps serving the last parameters read while its backend is down, then reads again', async () => {
    const disk = new DiskAuditBackend(await tempDir());
    let down = false;
    const errors: string[] = [];
    const backend = {
      entries: (tenant: string) => (down ? Promise.reject(new Error('connect ECONNREFUSED')) : disk.entries(tenant)),
      appendAt: disk.appendAt.bind(disk),
      close: () => disk.close(),
    };
    const store = new ParamStore(backend, DEFAULT_PARAMS, 0, (tenant) => errors.push(tenant));
    await store.apply('acme', { params: { ...DEFAULT_PARAMS, topK: 3 }, actor: 'a', action: 'apply', reason: 'r' });
    expect((await store.current('acme')).version).toBe(1);
    down = true;
    expect(await store.current('acme')).toEqual({ version: 1, params: { ...DEFAULT_PARAMS, topK: 3 } });
    // A tenant never read before gets the configured defaults rather than an error.
    expect(await store.current('globex')).toEqual({ version: 0, params: DEFAULT_PARAMS });
    expect(errors).toEqual(['acme', 'globex']);
    // A backend that hangs (a Redis client queueing commands while it reconnects) counts as down.
    const hanging = new ParamStore(
      { ...backend, entries: () => new Promise(() => undefined) },
      DEFAULT_PARAMS,
      0,
      (t) => errors.push(`hung:${t}`),
      10,
    );
    expect(await hanging.current('acme')).toEqual({ version: 0, params: DEFAULT_PARAMS });
    expect(errors).toContain('hung:acme');
    down = false;
    await disk.appendAt('acme', { ...(await disk.entries('acme'))[0]!, seq: 2, fromVersion: 1, toVersion: 2 }, 1);
    // The query that finds it back still gets the last version at once; the read behind it brings the new one.
    expect((await store.current('acme')).version).toBe(1);
    expect((await store.settled('acme')).version).toBe(2);
    expect((await store.current('acme')).version).toBe(2);
  });

  it('does not make queries wait on a failing backend: one read retries behind them', async () => {
    const disk = new DiskAuditBackend(await tempDir());
    let mode: 'up' | 'down' | 'hang' = 'up';
    let reads = 0;
    const backend = {
      entries: (tenant: string) => {
        reads += 1;
        if (mode === 'down') return Promise.reject(new Error('connect ECONNREFUSED'));
        return mode === 'hang' ? new Promise<never>(() => undefined) : disk.entries(tenant);
      },
      appendAt: disk.appendAt.bind(disk),
      close: () => disk.close(),
    };
    // A read timeout longer than any test: a query that waited on the hanging read would never finish.
    const store = new ParamStore(backend, DEFAULT_PARAMS, 0, undefined, 3_600_000);
    await store.apply('acme', { params: { ...DEFAULT_PARAMS, topK: 4 }, actor: 'a', action: 'apply', reason: 'r' });
    mode = 'down';
    expect((await store.current('acme')).version).toBe(1);
    mode = 'hang';
    reads = 0;
    const answers = await Promise.all(Array.from({ length: 5 }, () => store.current('acme')));
    expect(answers.map((a) => a.version)).toEqual([1, 1, 1, 1, 1]);
    // Five queries, one read in flight for all of them.
    expect(reads).toBe(1);
  });

  it('gives concurrent changes distinct versions, each computed from the other, on the disk log', async () => {
    await expectConcurrentChangesSerialised(new DiskAuditBackend(await tempDir()));
  });

  it('keeps both of two concurrent partial changes: each is merged over the version it is appended to', async () => {
    const backend = new DiskAuditBackend(await tempDir());
    // Two stores, as two activities: each read version 0 before either wrote.
    const [a, b] = [new ParamStore(backend, DEFAULT_PARAMS, 0), new ParamStore(backend, DEFAULT_PARAMS, 0)];
    await Promise.all([a.current('acme'), b.current('acme')]);
    await Promise.all([
      a.apply('acme', { params: { topK: 3 }, actor: 'alice', action: 'apply', reason: 'fewer chunks' }),
      b.apply('acme', { params: { bm25B: 0.5 }, actor: 'bob', action: 'apply', reason: 'less length normalisation' }),
    ]);
    const after = await new ParamStore(backend, DEFAULT_PARAMS, 0).current('acme');
    expect(after).toMatchObject({ version: 2, params: { topK: 3, bm25B: 0.5 } });
    // A merged value out of bounds is refused inside the write, and nothing is written.
    await expect(a.apply('acme', { params: { topK: 0 }, actor: 'a', action: 'apply', reason: 'r' })).rejects.toThrow(
      /parameters refused: topK/,
    );
    expect(await a.history('acme')).toHaveLength(2);
  });

  it('writes a change id once: a retried change returns the entry the first attempt wrote', async () => {
    const store = new ParamStore(new DiskAuditBackend(await tempDir()), DEFAULT_PARAMS, 0);
    const change = () =>
      store.apply('acme', { params: { topK: 4 }, actor: 'a', action: 'apply', reason: 'r', changeId: 'run-1:set-1' });
    const [first, second] = await Promise.all([change(), change()]);
    expect(second).toEqual(first);
    expect(await change()).toEqual(first);
    expect((await store.history('acme')).map((e) => e.changeId)).toEqual(['run-1:set-1']);
    const undo = () => store.rollback('acme', 'a', 'undo', 'run-1:rollback-2');
    expect((await undo()).toVersion).toBe(0);
    expect((await undo()).seq).toBe(2);
    expect(await store.history('acme')).toHaveLength(2);
  });

  it('refuses a change measured against a version that is no longer current, writing nothing', async () => {
    const store = new ParamStore(new DiskAuditBackend(await tempDir()), DEFAULT_PARAMS, 0);
    const change = (topK: number, expectedVersion?: number) =>
      store.apply('acme', {
        params: { ...DEFAULT_PARAMS, topK },
        actor: 'a',
        action: 'apply',
        reason: 'r',
        expectedVersion,
      });
    await change(3, 0);
    // An operator's change lands while a shadow evaluation measured against version 1 is running.
    await change(4);
    await expect(change(6, 1)).rejects.toThrow(/measured against version 1, but version 2 is current: refused/);
    expect((await store.history('acme')).map((e) => e.toVersion)).toEqual([1, 2]);
    expect((await store.current('acme')).params.topK).toBe(4);
  });

  it('skips a torn last line of the disk log, reports it, and writes the next change on a line of its own', async () => {
    const dir = await tempDir();
    const torn: Array<[string, number]> = [];
    const backend = new DiskAuditBackend(dir, (tenant, line) => torn.push([tenant, line]));
    const store = new ParamStore(backend, DEFAULT_PARAMS, 0);
    await store.apply('acme', { params: { ...DEFAULT_PARAMS, topK: 3 }, actor: 'a', action: 'apply', reason: 'r' });
    // A crash cut the second write short: no closing brace, no newline.
    const file = path.join(dir, 'acme.audit.jsonl');
    await appendFile(file, '{"seq":2,"at":"2026-12-03T10:00:00.000Z","actor":"b","acti');
    expect(await new ParamStore(backend, DEFAULT_PARAMS, 0).current('acme')).toMatchObject({
      version: 1,
      params: { topK: 3 },
    });
    expect(torn).toEqual([['acme', 2]]);
    const next = await store.apply('acme', {
      params: { ...DEFAULT_PARAMS, topK: 4 },
      actor: 'a',
      action: 'apply',
      reason: 'r',
    });
    expect(next).toMatchObject({ seq: 2, fromVersion: 1, toVersion: 2 });
    expect((await backend.entries('acme')).map((e) => e.toVersion)).toEqual([1, 2]);
    expect((await readFile(file, 'utf8')).split('\n')).toHaveLength(4);
  });
});
