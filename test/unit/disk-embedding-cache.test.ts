import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DiskEmbeddingCache } from '../../lib/retrieval/disk-embedding-cache.js';
import { tempDir } from '../support/ragline.js';

describe('DiskEmbeddingCache', () => {
  it('keeps vectors per model and mode across instances and drops a torn last record', async () => {
    const dir = await tempDir();
    const first = new DiskEmbeddingCache(dir);
    const key = { model: 'e5|query|', dimensions: 3, text: 'hello' };
    await first.set(key, [0.5, 0.25, -1]);
    await first.set({ ...key, text: 'world' }, [1, 2, 3]);
    expect(await first.get({ ...key, model: 'e5|passage|' })).toBeUndefined();
    const file = readdirSync(dir).find((name) => name.endsWith('.f32'))!;
    // A crash mid-append leaves part of a record.
    appendFileSync(path.join(dir, file), Buffer.alloc(7, 1));
    const second = new DiskEmbeddingCache(dir);
    expect(await second.get(key)).toEqual([0.5, 0.25, -1]);
    expect(await second.get({ ...key, text: 'world' })).toEqual([1, 2, 3]);
    await second.set({ ...key, text: 'again' }, [0, 0, 1]);
    expect(await new DiskEmbeddingCache(dir).get({ ...key, text: 'again' })).toEqual([0, 0, 1]);
  });

  it('refuses vectors of the wrong size or with NaN', async () => {
    const cache = new DiskEmbeddingCache(await tempDir());
    const key = { model: 'm', dimensions: 2, text: 't' };
    await expect(cache.set(key, [1, 2, 3])).rejects.toThrow(/3-dimension/);
    await expect(cache.set(key, [1, Number.NaN])).rejects.toThrow(/non-finite/);
    expect(await cache.get(key)).toBeUndefined();
  });
});
