import { createReadStream } from 'node:fs';
import { open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { ErrorType, RaglineError } from '../../errors.js';
import type { DenseIndex } from '../dense-index.js';
import { fileBase, JOURNAL_SUFFIX, SNAPSHOT_SUFFIX, syncDirectory, tenantOf } from './files.js';
import { frameRecord, unframeRecord } from './framing.js';
import type { Tenant, TenantShelf } from './tenant.js';
import { encodeVector, type EmbeddingIdentity, type StoredDocument } from './vectors.js';

/**
 * A tenant on disk: a snapshot plus an append-only journal, both JSON Lines. A write appends one record (only the
 * documents that changed) and fsyncs before the in-memory index changes, so an activity that returns has made its
 * write durable. Each journal record is framed (framing.ts), so a torn one is skipped without losing the records
 * after it. A write that failed part-way may or may not have reached the disk, so the next write first rewrites the
 * snapshot from memory and starts a clean journal: memory and disk agree again before anything else is appended.
 * Corpus versions in a journal only grow, even across failed writes. Once the journal outgrows the snapshot, the
 * snapshot is rewritten (temp file + rename + directory fsync) and the journal restarted, which keeps ingestion
 * linear: rewriting everything on each 200-document batch would be quadratic in the corpus size.
 */

const FORMAT = 'ragline-embedded-index';
const FORMAT_VERSION = 1;
const WRITE_BUFFER_BYTES = 1024 * 1024;

/** The first line of a snapshot. */
interface Header {
  format: typeof FORMAT;
  formatVersion: number;
  tenant: string;
  corpusVersion: number;
  /** Identity of the embedder the tenant's vectors came from (absent: no vectors). */
  embedding?: EmbeddingIdentity;
}

export type JournalRecord =
  | { corpusVersion: number; op: 'upsert'; docs: StoredDocument[]; embedding?: EmbeddingIdentity }
  | { corpusVersion: number; op: 'delete'; docIds: string[] };

/** What a snapshot is written from when it is not the tenant's live state (the switch to staged vectors). */
export interface SnapshotView {
  dense?: DenseIndex;
  embedding?: EmbeddingIdentity;
  corpusVersion?: number;
}

export interface PersistenceOptions {
  /** Journal size past which it is folded into a new snapshot (when also larger than the snapshot). */
  compactionBytes: number;
  /** Opens journal files for appending. */
  openJournal: (file: string) => Promise<FileHandle>;
}

export class IndexPersistence {
  constructor(
    private readonly indexDir: string,
    private readonly shelf: TenantShelf,
    private readonly options: PersistenceOptions,
  ) {}

  /** Removes temp files left by a crash and loads every tenant, whether it has a snapshot, a journal or both. */
  async loadAll(): Promise<void> {
    const names = await readdir(this.indexDir);
    for (const name of names) {
      if (name.endsWith('.tmp')) await rm(path.join(this.indexDir, name), { force: true });
    }
    const bases = new Set(
      names.flatMap((name) =>
        [SNAPSHOT_SUFFIX, JOURNAL_SUFFIX].flatMap((suffix) =>
          name.endsWith(suffix) ? [name.slice(0, -suffix.length)] : [],
        ),
      ),
    );
    for (const base of [...bases].sort()) await this.load(base);
  }

  async append(tenant: Tenant, record: JournalRecord): Promise<void> {
    // After a failed write the journal may end in a torn or unacknowledged record: replace it by a snapshot of
    // what memory holds (which never took that write) before appending anything after it.
    if (tenant.journalSuspect) await this.writeSnapshot(tenant);
    const file = path.join(this.indexDir, `${fileBase(tenant.name)}${JOURNAL_SUFFIX}`);
    const line = frameRecord(JSON.stringify(record));
    const created = tenant.journalBytes === 0;
    try {
      const handle = await this.options.openJournal(file);
      try {
        await handle.write(line);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      // A new journal is how open() finds a tenant that has no snapshot yet, so its directory entry must last.
      if (created) await syncDirectory(this.indexDir);
    } catch (error) {
      tenant.journalSuspect = true;
      throw error;
    }
    tenant.journalBytes += Buffer.byteLength(line);
  }

  async compactIfDue(tenant: Tenant): Promise<void> {
    if (tenant.journalBytes > Math.max(this.options.compactionBytes, tenant.snapshotBytes)) {
      await this.writeSnapshot(tenant);
    }
  }

  /** Writes the whole tenant as a new snapshot (temp file + rename), then starts an empty journal. */
  async writeSnapshot(tenant: Tenant, view: SnapshotView = {}): Promise<void> {
    const base = path.join(this.indexDir, fileBase(tenant.name));
    const embedding = view.embedding ?? tenant.embedding;
    const header: Header = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      tenant: tenant.name,
      corpusVersion: view.corpusVersion ?? tenant.index.corpusVersion,
      ...(embedding ? { embedding } : {}),
    };
    const temp = `${base}.snapshot.jsonl.tmp`;
    const handle = await open(temp, 'w');
    let bytes = 0;
    try {
      let buffer = `${JSON.stringify(header)}\n`;
      for (const entry of tenant.index.documents()) {
        const chunks = tenant.index.chunksOf(entry.docId);
        const doc: StoredDocument = { docId: entry.docId, title: entry.title, contentHash: entry.contentHash, chunks };
        const dense = view.dense ?? tenant.dense;
        if (dense && chunks.every((chunk) => dense.has(chunk.id))) {
          doc.vectors = chunks.map((chunk) => encodeVector(dense.get(chunk.id)!));
        }
        buffer += `${JSON.stringify(doc)}\n`;
        if (buffer.length >= WRITE_BUFFER_BYTES) {
          bytes += (await handle.write(buffer)).bytesWritten;
          buffer = '';
        }
      }
      bytes += (await handle.write(buffer)).bytesWritten;
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, `${base}${SNAPSHOT_SUFFIX}`);
    // The rename must be durable before the journal goes: otherwise a crash could leave the old snapshot and no
    // journal. Journal records at or below the snapshot's version are skipped on load, so a crash between the
    // two steps loses nothing.
    await syncDirectory(this.indexDir);
    await rm(`${base}${JOURNAL_SUFFIX}`, { force: true });
    await syncDirectory(this.indexDir);
    tenant.snapshotBytes = bytes;
    tenant.journalBytes = 0;
    tenant.journalSuspect = false;
  }

  private async load(name: string): Promise<void> {
    const base = path.join(this.indexDir, name);
    const snapshot = `${base}${SNAPSHOT_SUFFIX}`;
    const journal = `${base}${JOURNAL_SUFFIX}`;
    const size = (file: string) =>
      stat(file).then(
        (info) => info.size,
        () => -1,
      );
    const snapshotBytes = await size(snapshot);
    let tenant: Tenant | undefined;
    if (snapshotBytes >= 0) {
      for await (const line of createInterface({ input: createReadStream(snapshot), crlfDelay: Infinity })) {
        if (line === '') continue;
        if (!tenant) {
          const header = JSON.parse(line) as Header;
          if (header.format !== FORMAT || header.formatVersion !== FORMAT_VERSION) {
            throw new RaglineError(
              ErrorType.Configuration,
              `${snapshot} has format ${header.format} v${header.formatVersion}; this build reads ${FORMAT} v${FORMAT_VERSION}`,
            );
          }
          tenant = this.shelf.get(header.tenant);
          tenant.index.corpusVersion = header.corpusVersion;
          if (header.embedding) tenant.embedding = header.embedding;
          continue;
        }
        this.shelf.put(tenant, JSON.parse(line) as StoredDocument);
      }
      if (tenant) tenant.snapshotBytes = snapshotBytes;
    }
    const journalBytes = await size(journal);
    if (journalBytes < 0) return;
    if (!tenant) {
      const tenantName = tenantOf(name);
      if (tenantName === undefined) return;
      tenant = this.shelf.get(tenantName);
    }
    let skipped = 0;
    for await (const line of createInterface({ input: createReadStream(journal), crlfDelay: Infinity })) {
      if (line === '') continue;
      const json = unframeRecord(line);
      if (json === undefined) {
        // A torn or corrupt record was never acknowledged to its writer; the records after it were.
        skipped += 1;
        continue;
      }
      const record = JSON.parse(json) as JournalRecord;
      tenant.lastVersion = Math.max(tenant.lastVersion, record.corpusVersion);
      if (record.corpusVersion <= tenant.index.corpusVersion) continue;
      if (record.op === 'upsert') {
        if (record.embedding) tenant.embedding = record.embedding;
        for (const doc of record.docs) this.shelf.put(tenant, doc);
      } else for (const docId of record.docIds) this.shelf.remove(tenant, docId);
      tenant.index.corpusVersion = record.corpusVersion;
    }
    tenant.journalBytes = journalBytes;
    // New records must not follow a torn one, and a journal-only tenant gets its snapshot: fold both into one.
    if (skipped > 0 || snapshotBytes < 0) await this.writeSnapshot(tenant);
  }
}
