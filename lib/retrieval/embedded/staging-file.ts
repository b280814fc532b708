import { createReadStream } from 'node:fs';
import { open, rename, stat } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileBase, STAGING_SUFFIX, syncDirectory } from './files.js';
import { frameRecord, unframeRecord } from './framing.js';

/**
 * `<tenant>.staging.jsonl`: the new-model vectors of a re-embedding, a header line then framed records like the
 * journal's, fsynced per batch, so a restarted worker resumes where the last batch ended.
 */

const STAGING_FORMAT = 'ragline-embedding-staging';

/** The first line of a staging file. */
export interface StagingHeader {
  format: typeof STAGING_FORMAT;
  formatVersion: number;
  tenant: string;
  identity: string;
  dimensions: number;
}

/** A staged document: its content hash and one base64 float32 vector per chunk. */
export interface StagedDocument {
  docId: string;
  contentHash: string;
  vectors: string[];
}

/** One staging record. */
interface StagingRecord {
  docs: StagedDocument[];
}

export function stagingFile(indexDir: string, tenant: string): string {
  return path.join(indexDir, `${fileBase(tenant)}${STAGING_SUFFIX}`);
}

/** Creates the tenant's staging file holding only its header (temp file + rename, synced); returns the header. */
export async function createStagingFile(
  indexDir: string,
  tenant: string,
  identity: string,
  dimensions: number,
): Promise<StagingHeader> {
  const header: StagingHeader = { format: STAGING_FORMAT, formatVersion: 1, tenant, identity, dimensions };
  const file = stagingFile(indexDir, tenant);
  const temp = `${file}.tmp`;
  const handle = await open(temp, 'w');
  try {
    await handle.write(`${JSON.stringify(header)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  await syncDirectory(indexDir);
  return header;
}

/** Appends one fsynced record; after a failed write (`afterTornRecord`) it starts on a new line. */
export async function appendStagingRecord(
  file: string,
  docs: StagedDocument[],
  afterTornRecord: boolean,
): Promise<void> {
  const record: StagingRecord = { docs };
  const line = `${afterTornRecord ? '\n' : ''}${frameRecord(JSON.stringify(record))}`;
  const handle = await open(file, 'a');
  try {
    await handle.write(line);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/**
 * Calls `onDoc` for every staged document in file order (later records win); undefined when there is no file. The
 * header is undefined when the file is not a staging file of `tenant`; `endsInNewline` is false after a torn write.
 */
export async function readStagingFile(
  file: string,
  tenant: string,
  onDoc: (doc: StagedDocument) => void,
): Promise<{ header: StagingHeader | undefined; endsInNewline: boolean } | undefined> {
  const info = await stat(file).catch(() => undefined);
  if (!info) return undefined;
  let header: StagingHeader | undefined;
  let first = true;
  for await (const line of createInterface({ input: createReadStream(file), crlfDelay: Infinity })) {
    if (first) {
      first = false;
      try {
        header = JSON.parse(line) as StagingHeader;
      } catch {
        return { header: undefined, endsInNewline: true };
      }
      if (header.format !== STAGING_FORMAT || header.tenant !== tenant)
        return { header: undefined, endsInNewline: true };
      continue;
    }
    if (line === '') continue;
    const json = unframeRecord(line);
    // A torn record was never acknowledged: its documents are simply embedded again.
    if (json === undefined) continue;
    for (const doc of (JSON.parse(json) as StagingRecord).docs) onDoc(doc);
  }
  let endsInNewline = true;
  if (info.size > 0) {
    const handle = await open(file, 'r');
    try {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, info.size - 1);
      endsInNewline = last[0] === 0x0a;
    } finally {
      await handle.close();
    }
  }
  return { header, endsInNewline };
}
