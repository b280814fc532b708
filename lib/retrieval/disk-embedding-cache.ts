import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync, existsSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EmbeddingCache, EmbeddingCacheKey } from './embedder.js';

const HASH_BYTES = 32;

/** `${XDG_CACHE_HOME:-~/.cache}/ragline/embeddings`: outside any checkout, so every worktree and bench reuses it. */
export function defaultEmbeddingCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(base, 'ragline', 'embeddings');
}

interface Shelf {
  file: string;
  dimensions: number;
  vectors: Map<string, Float32Array>;
}

/**
 * Embeddings on disk, one append-only file per model-and-mode: fixed-size records of sha256(text) and the float32
 * vector. Appending never rewrites what is there, and a torn last record (a crash mid-write) is cut off on load,
 * so the cache cannot poison results; at worst an embedding is computed again. Documents of a corpus are embedded
 * once per machine, which is what makes a 30-minute SciFact embedding affordable.
 */
export class DiskEmbeddingCache implements EmbeddingCache {
  private readonly shelves = new Map<string, Shelf>();

  constructor(private readonly dir: string = defaultEmbeddingCacheDir()) {
    mkdirSync(dir, { recursive: true });
  }

  get(key: EmbeddingCacheKey): Promise<number[] | undefined> {
    const vector = this.shelf(key).vectors.get(textHash(key.text));
    return Promise.resolve(vector ? Array.from(vector) : undefined);
  }

  set(key: EmbeddingCacheKey, vector: number[]): Promise<void> {
    const shelf = this.shelf(key);
    if (vector.length !== shelf.dimensions || vector.some((value) => !Number.isFinite(value))) {
      return Promise.reject(new Error(`refusing to cache a ${vector.length}-dimension or non-finite vector`));
    }
    const hash = textHash(key.text);
    if (shelf.vectors.has(hash)) return Promise.resolve();
    const values = Float32Array.from(vector);
    const record = Buffer.alloc(HASH_BYTES + values.byteLength);
    Buffer.from(hash, 'hex').copy(record, 0);
    Buffer.from(values.buffer).copy(record, HASH_BYTES);
    appendFileSync(shelf.file, record);
    shelf.vectors.set(hash, values);
    return Promise.resolve();
  }

  private shelf(key: EmbeddingCacheKey): Shelf {
    const id = createHash('sha256').update(`${key.model}\0${key.dimensions}`).digest('hex').slice(0, 24);
    let shelf = this.shelves.get(id);
    if (shelf) return shelf;
    const file = path.join(this.dir, `${id}.f32`);
    shelf = { file, dimensions: key.dimensions, vectors: new Map() };
    const label = path.join(this.dir, `${id}.json`);
    if (!existsSync(label)) writeFileSync(label, JSON.stringify({ model: key.model, dimensions: key.dimensions }));
    if (existsSync(file)) {
      const bytes = readFileSync(file);
      const size = HASH_BYTES + 4 * key.dimensions;
      const whole = bytes.length - (bytes.length % size);
      if (whole !== bytes.length) truncateSync(file, whole);
      for (let offset = 0; offset < whole; offset += size) {
        const hash = bytes.subarray(offset, offset + HASH_BYTES).toString('hex');
        const copy = new Float32Array(key.dimensions);
        new Uint8Array(copy.buffer).set(bytes.subarray(offset + HASH_BYTES, offset + size));
        shelf.vectors.set(hash, copy);
      }
    }
    this.shelves.set(id, shelf);
    return shelf;
  }
}

function textHash(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
