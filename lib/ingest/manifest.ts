import fs from 'node:fs/promises';
import path from 'node:path';
import { LRUCache } from 'lru-cache';
import type { SourceFile } from './sources.js';

/**
 * The list of files an ingestion run works through, kept in the worker's data dir instead of the workflow history:
 * a large tree's list would pass Temporal's 2 MB payload limit, and the history would carry it in every run.
 * The reference carries the paths, so a worker that lacks the file (another host, a wiped data dir) discovers the
 * same sorted list again.
 */
export interface ManifestRef {
  id: string;
  paths: string[];
}

const MAX_AGE_MS = 7 * 24 * 3600_000;
const parsed = new LRUCache<string, SourceFile[]>({ max: 4 });

const fileOf = (dir: string, id: string) => path.join(dir, `${id}.manifest.jsonl`);

export async function writeManifest(dir: string, id: string, files: SourceFile[]): Promise<void> {
  await fs.mkdir(dir, { recursive: true });
  await removeStaleManifests(dir);
  const file = fileOf(dir, id);
  await fs.writeFile(`${file}.tmp`, files.map((f) => `${JSON.stringify(f)}\n`).join(''));
  await fs.rename(`${file}.tmp`, file);
  parsed.set(file, files);
}

export async function readManifest(
  dir: string,
  ref: ManifestRef,
  rediscover: (paths: string[]) => Promise<SourceFile[]>,
): Promise<SourceFile[]> {
  const file = fileOf(dir, ref.id);
  const cached = parsed.get(file);
  if (cached) return cached;
  let files: SourceFile[];
  try {
    const text = await fs.readFile(file, 'utf8');
    files = text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as SourceFile);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    files = await rediscover(ref.paths);
    await writeManifest(dir, ref.id, files);
  }
  parsed.set(file, files);
  return files;
}

export async function removeManifest(dir: string, ref: ManifestRef): Promise<void> {
  const file = fileOf(dir, ref.id);
  parsed.delete(file);
  await fs.rm(file, { force: true });
}

/** Manifests of runs abandoned long ago (terminated, or their workflow reset) are not kept forever. */
async function removeStaleManifests(dir: string): Promise<void> {
  const now = Date.now();
  for (const name of await fs.readdir(dir)) {
    if (!name.endsWith('.manifest.jsonl')) continue;
    const info = await fs.stat(path.join(dir, name)).catch(() => undefined);
    if (info && now - info.mtimeMs > MAX_AGE_MS) await fs.rm(path.join(dir, name), { force: true });
  }
}
