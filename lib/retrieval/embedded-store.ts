import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, access, constants } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type {
  Chunk,
  ChunkStore,
  CorpusStats,
  DocumentChunks,
  HealthStatus,
  SearchRequest,
  SearchResponse,
  UpsertResult,
} from '../domain.js';
import { ErrorType, InvalidInputError, RaglineError } from '../errors.js';
import { Analyzer } from './analyzer.js';
import { TenantIndex, type Bm25Params, type FeedbackParams } from './lexical-index.js';
import { TenantLock } from './tenant-lock.js';

/**
 * The default ChunkStore: an in-process BM25F index per tenant, persisted under `<dataDir>/index/`.
 *
 * Persistence is a snapshot plus an append-only journal per tenant, both JSON Lines. A write appends one record
 * (only the documents that changed) and fsyncs before the in-memory index changes, so an activity that
 * returns has made its write durable and a failed write leaves memory and disk agreeing. Once the journal
 * outgrows the snapshot, the snapshot is rewritten (temp file + rename) and the journal restarted, which keeps
 * ingestion linear: rewriting everything on each 200-document batch would be quadratic in the corpus size.
 * One process owns a data directory; two workers must not share one.
 */

/** Tuned on SciFact, see README.md. */
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75, titleB: 0.75, titleWeight: 3 };
/** RM3 is off: every setting tried lowered nDCG@10 on SciFact (README.md). */
export const DEFAULT_FEEDBACK: FeedbackParams = { docs: 0, terms: 10, originalWeight: 0.5 };

export interface EmbeddedStoreOptions {
  bm25?: Partial<Bm25Params>;
  feedback?: Partial<FeedbackParams>;
  analyzer?: Analyzer;
  /** Journal size past which it is folded into a new snapshot (when also larger than the snapshot). @default 8 MiB */
  compactionBytes?: number;
}

const FORMAT = 'ragline-embedded-index';
const FORMAT_VERSION = 1;
const MIN_COMPACTION_BYTES = 8 * 1024 * 1024;
const WRITE_BUFFER_BYTES = 1024 * 1024;

interface Header {
  format: typeof FORMAT;
  formatVersion: number;
  tenant: string;
  corpusVersion: number;
}

type JournalRecord =
  | { corpusVersion: number; op: 'upsert'; docs: DocumentChunks[] }
  | { corpusVersion: number; op: 'delete'; docIds: string[] };

interface Tenant {
  name: string;
  index: TenantIndex;
  snapshotBytes: number;
  journalBytes: number;
}

/** Why a document cannot be stored, or undefined when it can. Lets callers skip bad documents in a batch. */
export function validateDocument(doc: DocumentChunks): string | undefined {
  if (typeof doc.docId !== 'string' || doc.docId.trim() === '') return 'document id is empty';
  if (typeof doc.contentHash !== 'string' || doc.contentHash === '') return `document ${doc.docId} has no content hash`;
  if (!Array.isArray(doc.chunks) || doc.chunks.length === 0) return `document ${doc.docId} has no chunks`;
  if (doc.chunks.every((chunk) => chunk.text.trim() === '')) return `document ${doc.docId} has no text`;
  const ids = new Set<string>();
  for (const chunk of doc.chunks) {
    if (chunk.docId !== doc.docId) return `chunk ${chunk.id} belongs to ${chunk.docId}, not ${doc.docId}`;
    if (ids.has(chunk.id)) return `document ${doc.docId} repeats chunk id ${chunk.id}`;
    ids.add(chunk.id);
  }
  return undefined;
}

export class EmbeddedStore implements ChunkStore {
  readonly kind = 'embedded';
  private readonly tenants = new Map<string, Tenant>();
  private readonly locks = new TenantLock();
  private readonly bm25: Bm25Params;
  private readonly feedback: FeedbackParams;
  private readonly analyzer: Analyzer;
  private readonly compactionBytes: number;
  private closed = false;

  private constructor(
    private readonly indexDir: string,
    options: EmbeddedStoreOptions,
  ) {
    this.bm25 = { ...DEFAULT_BM25, ...options.bm25 };
    this.feedback = { ...DEFAULT_FEEDBACK, ...options.feedback };
    this.analyzer = options.analyzer ?? new Analyzer();
    this.compactionBytes = options.compactionBytes ?? MIN_COMPACTION_BYTES;
  }

  /** Opens (creating if needed) the index under `<dataDir>/index/` and loads every tenant in it. */
  static async open(dataDir: string, options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const store = new EmbeddedStore(path.join(dataDir, 'index'), options);
    await mkdir(store.indexDir, { recursive: true });
    const names = await readdir(store.indexDir);
    for (const name of names) {
      if (name.endsWith('.tmp')) await rm(path.join(store.indexDir, name), { force: true });
    }
    for (const name of names) {
      if (name.endsWith('.snapshot.jsonl')) await store.load(name.slice(0, -'.snapshot.jsonl'.length));
    }
    return store;
  }

  async upsertDocuments(tenantName: string, docs: DocumentChunks[]): Promise<UpsertResult[]> {
    const problems = docs.flatMap((doc) => validateDocument(doc) ?? []);
    if (problems.length > 0) throw new InvalidInputError(`rejected documents: ${problems.join('; ')}`);
    return this.exclusive(tenantName, async () => {
      const tenant = this.tenant(tenantName);
      // The last copy of a docId in one batch wins, as if the batch were applied in order.
      const latest = new Map(docs.map((doc) => [doc.docId, doc]));
      const changed = [...latest.values()].filter((doc) => tenant.index.contentHash(doc.docId) !== doc.contentHash);
      const results = docs.map((doc): UpsertResult => {
        const stored = tenant.index.contentHash(doc.docId);
        const status = stored === undefined ? 'added' : stored === doc.contentHash ? 'unchanged' : 'updated';
        return { docId: doc.docId, status, chunks: doc.chunks.length };
      });
      if (changed.length === 0) return results;
      const corpusVersion = tenant.index.corpusVersion + 1;
      await this.append(tenant, { corpusVersion, op: 'upsert', docs: changed });
      for (const doc of changed) tenant.index.put(doc);
      tenant.index.corpusVersion = corpusVersion;
      await this.compactIfDue(tenant);
      return results;
    });
  }

  async deleteDocuments(tenantName: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    return this.exclusive(tenantName, async () => {
      const tenant = this.tenant(tenantName);
      const unique = [...new Set(docIds)];
      const deleted = unique.filter((docId) => tenant.index.contentHash(docId) !== undefined);
      const missing = unique.filter((docId) => tenant.index.contentHash(docId) === undefined);
      if (deleted.length === 0) return { deleted, missing };
      const corpusVersion = tenant.index.corpusVersion + 1;
      await this.append(tenant, { corpusVersion, op: 'delete', docIds: deleted });
      for (const docId of deleted) tenant.index.remove(docId);
      tenant.index.corpusVersion = corpusVersion;
      await this.compactIfDue(tenant);
      return { deleted, missing };
    });
  }

  async search(tenantName: string, request: SearchRequest): Promise<SearchResponse> {
    if (this.analyzer.analyze(request.query).length === 0) return { hits: [], reason: 'no-terms' };
    const tenant = this.tenants.get(tenantName);
    if (!tenant || tenant.index.chunkCount === 0) return { hits: [], reason: 'empty-corpus' };
    const feedback = this.feedback.docs > 0 ? this.feedback : undefined;
    const topK = Math.max(0, Math.floor(request.topK));
    const bm25 = request.bm25 ? { ...this.bm25, ...definedOnly(request.bm25) } : this.bm25;
    const hits = tenant.index.search(request.query, topK, feedback, bm25).map(({ slot, score }) => {
      const chunk = tenant.index.chunk(slot)!;
      return { chunkId: chunk.id, docId: chunk.docId, title: chunk.title, text: chunk.text, score };
    });
    return { hits };
  }

  async getChunks(tenantName: string, chunkIds: string[]): Promise<Chunk[]> {
    const tenant = this.tenants.get(tenantName);
    if (!tenant) return [];
    const found: Chunk[] = [];
    for (const chunkId of chunkIds) {
      // Chunk ids are `<docId>#<position>`, so the document narrows the lookup without a per-chunk map.
      const hash = chunkId.lastIndexOf('#');
      const docId = hash < 0 ? chunkId : chunkId.slice(0, hash);
      const chunk = tenant.index.chunksOf(docId).find((candidate) => candidate.id === chunkId);
      if (chunk) found.push(chunk);
    }
    return found;
  }

  async documentHash(tenantName: string, docId: string): Promise<string | undefined> {
    return this.tenants.get(tenantName)?.index.contentHash(docId);
  }

  async stats(tenantName: string): Promise<CorpusStats> {
    const index = this.tenants.get(tenantName)?.index;
    return {
      documents: index?.documentCount ?? 0,
      chunks: index?.chunkCount ?? 0,
      corpusVersion: index?.corpusVersion ?? 0,
    };
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      await access(this.indexDir, constants.W_OK);
      let chunks = 0;
      for (const tenant of this.tenants.values()) chunks += tenant.index.chunkCount;
      const detail = `${this.tenants.size} tenants, ${chunks} chunks`;
      return { ok: !this.closed, latencyMs: performance.now() - started, detail };
    } catch (error) {
      return { ok: false, latencyMs: performance.now() - started, error: String(error) };
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.locks.drain();
  }

  private tenant(name: string): Tenant {
    let tenant = this.tenants.get(name);
    if (!tenant) {
      tenant = { name, index: new TenantIndex(this.analyzer, this.bm25), snapshotBytes: 0, journalBytes: 0 };
      this.tenants.set(name, tenant);
    }
    return tenant;
  }

  /** Serialises writes per tenant; searches need no lock because index mutations are synchronous. */
  private exclusive<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new RaglineError(ErrorType.Unavailable, 'embedded store is closed'));
    return this.locks.run(tenant, work);
  }

  private fileBase(tenant: string): string {
    // Safe names stay readable; anything else is hex-encoded. Distinct prefixes keep the two from colliding.
    return /^[a-z0-9_-]{1,64}$/.test(tenant) ? `t_${tenant}` : `h_${Buffer.from(tenant).toString('hex')}`;
  }

  private async append(tenant: Tenant, record: JournalRecord): Promise<void> {
    const file = path.join(this.indexDir, `${this.fileBase(tenant.name)}.journal.jsonl`);
    // The snapshot is what open() discovers a tenant by, so the first write of a tenant creates it.
    if (tenant.snapshotBytes === 0) await this.writeSnapshot(tenant);
    const line = `${JSON.stringify(record)}\n`;
    const handle = await open(file, 'a');
    try {
      await handle.write(line);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    tenant.journalBytes += Buffer.byteLength(line);
  }

  private async compactIfDue(tenant: Tenant): Promise<void> {
    if (tenant.journalBytes > Math.max(this.compactionBytes, tenant.snapshotBytes)) await this.writeSnapshot(tenant);
  }

  /** Writes the whole tenant as a new snapshot (temp file + rename), then starts an empty journal. */
  private async writeSnapshot(tenant: Tenant): Promise<void> {
    const base = path.join(this.indexDir, this.fileBase(tenant.name));
    const header: Header = {
      format: FORMAT,
      formatVersion: FORMAT_VERSION,
      tenant: tenant.name,
      corpusVersion: tenant.index.corpusVersion,
    };
    const temp = `${base}.snapshot.jsonl.tmp`;
    const handle = await open(temp, 'w');
    let bytes = 0;
    try {
      let buffer = `${JSON.stringify(header)}\n`;
      for (const entry of tenant.index.documents()) {
        const doc: DocumentChunks = {
          docId: entry.docId,
          title: entry.title,
          contentHash: entry.contentHash,
          chunks: tenant.index.chunksOf(entry.docId),
        };
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
    await rename(temp, `${base}.snapshot.jsonl`);
    // Journal records at or below the snapshot's version are skipped on load, so a crash here loses nothing.
    await rm(`${base}.journal.jsonl`, { force: true });
    tenant.snapshotBytes = bytes;
    tenant.journalBytes = 0;
  }

  private async load(fileBase: string): Promise<void> {
    const base = path.join(this.indexDir, fileBase);
    let tenant: Tenant | undefined;
    for await (const line of createInterface({
      input: createReadStream(`${base}.snapshot.jsonl`),
      crlfDelay: Infinity,
    })) {
      if (line === '') continue;
      if (!tenant) {
        const header = JSON.parse(line) as Header;
        if (header.format !== FORMAT || header.formatVersion !== FORMAT_VERSION) {
          throw new RaglineError(
            ErrorType.Configuration,
            `${base}.snapshot.jsonl has format ${header.format} v${header.formatVersion}; this build reads ${FORMAT} v${FORMAT_VERSION}`,
          );
        }
        tenant = this.tenant(header.tenant);
        tenant.index.corpusVersion = header.corpusVersion;
        continue;
      }
      tenant.index.put(JSON.parse(line) as DocumentChunks);
    }
    if (!tenant) return;
    tenant.snapshotBytes = (await stat(`${base}.snapshot.jsonl`)).size;
    const journal = `${base}.journal.jsonl`;
    const journalExists = await stat(journal).then(
      (info) => info.size,
      () => -1,
    );
    if (journalExists < 0) return;
    let torn = false;
    for await (const line of createInterface({ input: createReadStream(journal), crlfDelay: Infinity })) {
      if (line === '') continue;
      let record: JournalRecord;
      try {
        record = JSON.parse(line) as JournalRecord;
      } catch {
        // Only a crash mid-append leaves a partial line, and it can only be the last one.
        torn = true;
        break;
      }
      if (record.corpusVersion <= tenant.index.corpusVersion) continue;
      if (record.op === 'upsert') for (const doc of record.docs) tenant.index.put(doc);
      else for (const docId of record.docIds) tenant.index.remove(docId);
      tenant.index.corpusVersion = record.corpusVersion;
    }
    tenant.journalBytes = journalExists;
    // A torn tail must not have new records appended after it; folding everything into a snapshot drops it.
    if (torn) await this.writeSnapshot(tenant);
  }
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
