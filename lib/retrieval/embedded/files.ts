import { open, type FileHandle } from 'node:fs/promises';

/**
 * The files of `<dataDir>/index/`: per tenant a snapshot, a journal and, during a re-embedding, a staging file, all
 * named from one file base that encodes the tenant. Temp files (`.tmp`) are left only by a crash and removed on open.
 */

export const SNAPSHOT_SUFFIX = '.snapshot.jsonl';
export const JOURNAL_SUFFIX = '.journal.jsonl';
export const STAGING_SUFFIX = '.staging.jsonl';

export function fileBase(tenant: string): string {
  // Safe names stay readable; anything else is hex-encoded. Distinct prefixes keep the two from colliding.
  return /^[a-z0-9_-]{1,64}$/.test(tenant) ? `t_${tenant}` : `h_${Buffer.from(tenant).toString('hex')}`;
}

/** The tenant a file base was made from (the inverse of fileBase), for tenants that have only a journal. */
export function tenantOf(fileBase: string): string | undefined {
  if (fileBase.startsWith('t_')) return fileBase.slice(2);
  if (fileBase.startsWith('h_') && /^[0-9a-f]*$/.test(fileBase.slice(2))) {
    return Buffer.from(fileBase.slice(2), 'hex').toString();
  }
  return undefined;
}

/** Makes renames, creations and removals in a directory durable (a no-op where directories cannot be opened). */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    // Windows cannot open a directory; there the rename itself is what NTFS journals.
    if ((error as NodeJS.ErrnoException).code !== 'EISDIR' && (error as NodeJS.ErrnoException).code !== 'EPERM') {
      throw error;
    }
  } finally {
    await handle?.close();
  }
}
