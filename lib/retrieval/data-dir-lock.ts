import { randomUUID } from 'node:crypto';
import { open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorType, RaglineError } from '../errors.js';

/** Locks this process holds, by lock-file path, with the token written into each. */
const held = new Map<string, string>();

interface LockContent {
  pid: number;
  hostname: string;
  token: string;
}

/**
 * "One process per data dir" for the embedded index: `<dataDir>/ragline.lock` names the process that owns it.
 *
 * Staleness is decided by the owner's pid, not by a refreshed mtime (as mtime-based lock libraries do): loading or
 * snapshotting a large index can block the event loop for longer than any refresh interval, and a lock that
 * expires under a busy owner is exactly the double-writer this guards against. A lock left by a process that is
 * gone is taken over; one naming this very pid but not held by this process is left over from an earlier
 * container run (pid numbers repeat there) and is taken over too.
 */
export class DataDirLock {
  private constructor(
    readonly file: string,
    private readonly token: string,
  ) {}

  static async acquire(dataDir: string): Promise<DataDirLock> {
    const file = path.join(path.resolve(dataDir), 'ragline.lock');
    const content: LockContent = { pid: process.pid, hostname: os.hostname(), token: randomUUID() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(file, 'wx');
        try {
          await handle.writeFile(`${JSON.stringify(content)}\n`);
          await handle.sync();
        } finally {
          await handle.close();
        }
        held.set(file, content.token);
        return new DataDirLock(file, content.token);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const owner = await readOwner(file);
      if (owner && isLive(owner)) {
        throw new RaglineError(
          ErrorType.Configuration,
          `data dir ${dataDir} is in use by process ${owner.pid} on ${owner.hostname} (lock file ${file}). ` +
            'One process owns a data dir: stop that worker, set another RAGLINE_DATA_DIR, or run several workers ' +
            'with Qdrant (QDRANT_URL). If no such process runs, delete the lock file.',
        );
      }
      await rm(file, { force: true });
    }
    throw new RaglineError(ErrorType.Unavailable, `could not take the lock file ${file}: another process keeps racing`);
  }

  async release(): Promise<void> {
    if (held.get(this.file) !== this.token) return;
    held.delete(this.file);
    const owner = await readOwner(this.file);
    if (owner?.token === this.token) await rm(this.file, { force: true });
  }
}

async function readOwner(file: string): Promise<LockContent | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<LockContent>;
    if (typeof parsed.pid === 'number' && typeof parsed.token === 'string') {
      return { pid: parsed.pid, hostname: String(parsed.hostname ?? ''), token: parsed.token };
    }
  } catch {
    // A lock file cut short by a crash between create and write names no owner.
  }
  return undefined;
}

function isLive(owner: LockContent): boolean {
  // On another host the pid says nothing; assume it runs (the error says how to clear it).
  if (owner.hostname !== os.hostname()) return true;
  if (owner.pid === process.pid) return [...held.values()].includes(owner.token);
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
