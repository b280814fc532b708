import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, access, constants, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { crc32 } from 'node:zlib';
import type {
  Chunk,
  ChunkStore,
  CorpusStats,
  DocumentChunks,
  HealthStatus,
  SearchRequest,
  SearchResponse,
  UpsertOptions,
  UpsertResult,
} from '../domain.js';
import { ErrorType, InvalidInputError, RaglineError } from '../errors.js';
import { Analyzer } from './analyzer.js';
import { DenseIndex, vectorProblem, type DenseIndexOptions } from './dense-index.js';
import { embedDocuments, embedderIdentity, type Embedder } from './embedder.js';
import { DEFAULT_FUSION, fuseHybrid, type FusionParams } from './fusion.js';
import { TenantIndex, type Bm25Params, type FeedbackParams } from './lexical-index.js';
import { DataDirLock } from './data-dir-lock.js';
import {
  NoEmbedderError,
  type EmbeddingStatus,
  type ReembeddableStore,
  type StageOptions,
  type StageResult,
  type SwitchResult,
} from './reembedding.js';
import { TenantLock } from './tenant-lock.js';

/**
 * The default ChunkStore: an in-process BM25F index per tenant, persisted under `<dataDir>/index/`.
 *
 * Persistence is a snapshot plus an append-only journal per tenant, both JSON Lines. A write appends one record
 * (only the documents that changed) and fsyncs before the in-memory index changes, so an activity that
 * returns has made its write durable. Each journal record is framed with its length and CRC-32, so a reader
 * takes a record whole or not at all and skips a torn one without losing the records after it. A write that
 * failed part-way may or may not have reached the disk, so the next write first rewrites the snapshot from
 * memory and starts a clean journal: memory and disk agree again before anything else is appended. Corpus
 * versions in a journal only grow, even across failed writes. Once the journal outgrows the snapshot, the
 * snapshot is rewritten (temp file + rename + directory fsync) and the journal restarted, which keeps ingestion
 * linear: rewriting everything on each 200-document batch would be quadratic in the corpus size.
 * One process owns a data directory, enforced by a lock file; two workers must not share one.
 *
 * With an embedder, every chunk also has a dense vector (DenseIndex), computed before the write and carried in
 * the same journal record and snapshot line as its text, so the lexical and dense parts can never disagree: a
 * failing embedder fails the whole batch before anything is written. Searches then fuse both legs (FusionParams);
 * if the query cannot be embedded, they answer lexically and say so in `degradedReason`. A tenant records the
 * embedder identity (model and document mode) its vectors came from and never mixes another's into them.
 *
 * Turning embeddings on, or changing the model, over an indexed tenant is a re-embedding (ReembeddableStore): new
 * vectors are staged in `<tenant>.staging.jsonl` (framed records like the journal's, fsynced per batch, so a
 * restarted worker resumes where the last batch ended) while queries keep the live index, and replace the live
 * vectors in one snapshot rewrite once they cover every live chunk. Ingestion meanwhile stores documents lexically
 * and stages their new-model vectors in the same step, so nothing ingested during a reindex is left behind.
 */

/** Tuned on SciFact, see README.md. */
export const DEFAULT_BM25: Bm25Params = { k1: 1.2, b: 0.75, titleB: 0.75, titleWeight: 3, documentWeight: 1 };
/** RM3 is off: every setting tried lowered nDCG@10 on SciFact (README.md). */
export const DEFAULT_FEEDBACK: FeedbackParams = { docs: 0, terms: 10, originalWeight: 0.5 };

export interface EmbeddedStoreOptions {
  bm25?: Partial<Bm25Params>;
  feedback?: Partial<FeedbackParams>;
  analyzer?: Analyzer;
  /** Journal size past which it is folded into a new snapshot (when also larger than the snapshot). @default 8 MiB */
  compactionBytes?: number;
  /** Dense leg: unset means lexical only. */
  embedder?: Embedder;
  fusion?: Partial<FusionParams>;
  dense?: DenseIndexOptions;
  /** Opens journal files for appending; a test injects disk failures through it. @default fs/promises open */
  openJournal?: (file: string) => Promise<FileHandle>;
}

const FORMAT = 'ragline-embedded-index';
const FORMAT_VERSION = 1;
const MIN_COMPACTION_BYTES = 8 * 1024 * 1024;
const WRITE_BUFFER_BYTES = 1024 * 1024;
const SNAPSHOT_SUFFIX = '.snapshot.jsonl';
const JOURNAL_SUFFIX = '.journal.jsonl';
const STAGING_SUFFIX = '.staging.jsonl';
const STAGING_FORMAT = 'ragline-embedding-staging';
// `J1 <bytes of JSON> <crc32 of JSON, hex> <JSON>`: the length and checksum let a reader tell a whole record from
// a torn one anywhere in the file. Unframed lines (written before framing) start with `{` and are still read.
const FRAME = /^J1 (\d+) ([0-9a-f]{8}) /;

interface Header {
  format: typeof FORMAT;
  formatVersion: number;
  tenant: string;
  corpusVersion: number;
  /** Identity of the embedder the tenant's vectors came from (absent: no vectors). */
  embedding?: { identity: string; dimensions: number };
}

/** A document as persisted: its chunks plus, with an embedder, one base64 float32 vector per chunk. */
type StoredDocument = DocumentChunks & { vectors?: string[] };

type JournalRecord =
  | { corpusVersion: number; op: 'upsert'; docs: StoredDocument[]; embedding?: Header['embedding'] }
  | { corpusVersion: number; op: 'delete'; docIds: string[] };

interface Tenant {
  name: string;
  index: TenantIndex;
  snapshotBytes: number;
  journalBytes: number;
  dense?: DenseIndex;
  embedding?: Header['embedding'];
  /** Highest corpus version ever given to a journal record, applied or not, so versions never repeat. */
  lastVersion: number;
  /** A write failed part-way: the journal's tail is unknown until the snapshot is rewritten. */
  journalSuspect: boolean;
  /** New vectors being computed for the configured embedder (a re-embedding in progress). */
  staging?: Staging;
}

/** The first line of a staging file. */
interface StagingHeader {
  format: typeof STAGING_FORMAT;
  formatVersion: number;
  tenant: string;
  identity: string;
  dimensions: number;
}

/** One staging record: documents, each with its content hash and one base64 float32 vector per chunk. */
interface StagingRecord {
  docs: Array<{ docId: string; contentHash: string; vectors: string[] }>;
}

interface Staging {
  identity: string;
  dimensions: number;
  /** The latest staged version of each document: its content hash and chunk count (the vectors stay on disk). */
  staged: Map<string, { contentHash: string; chunks: number }>;
  /** Live documents with no staged vectors of their current version, and their chunk counts, in batch order. */
  pending: Map<string, number>;
  pendingChunks: number;
  /** A write failed part-way: the file may end in a torn record, so the next record starts on a new line. */
  suspect: boolean;
}

/** What a snapshot is written from when it is not the tenant's live state (the switch to staged vectors). */
interface SnapshotView {
  dense?: DenseIndex;
  embedding?: Header['embedding'];
  corpusVersion?: number;
}

/** One journal line for a record: framed so that a torn or corrupt record is recognised and skipped. */
export function frameRecord(json: string): string {
  const bytes = Buffer.from(json);
  return `J1 ${bytes.length} ${crc32(bytes).toString(16).padStart(8, '0')} ${json}\n`;
}

/** The JSON of a framed (or legacy unframed) journal line, or undefined when the line is torn or corrupt. */
export function unframeRecord(line: string): string | undefined {
  if (line.startsWith('{')) {
    try {
      JSON.parse(line);
      return line;
    } catch {
      return undefined;
    }
  }
  const frame = FRAME.exec(line);
  if (!frame) return undefined;
  const json = Buffer.from(line.slice(frame[0].length));
  if (json.length !== Number(frame[1]) || crc32(json).toString(16).padStart(8, '0') !== frame[2]) return undefined;
  return json.toString();
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

export class EmbeddedStore implements ChunkStore, ReembeddableStore {
  readonly kind = 'embedded';
  private readonly tenants = new Map<string, Tenant>();
  private readonly locks = new TenantLock();
  private readonly bm25: Bm25Params;
  private readonly feedback: FeedbackParams;
  private readonly analyzer: Analyzer;
  private readonly compactionBytes: number;
  private readonly embedder: Embedder | undefined;
  private readonly fusion: FusionParams;
  private readonly denseOptions: DenseIndexOptions;
  private readonly openJournal: (file: string) => Promise<FileHandle>;
  private closed = false;

  private constructor(
    private readonly indexDir: string,
    private readonly dirLock: DataDirLock,
    options: EmbeddedStoreOptions,
  ) {
    this.bm25 = { ...DEFAULT_BM25, ...options.bm25 };
    this.feedback = { ...DEFAULT_FEEDBACK, ...options.feedback };
    this.analyzer = options.analyzer ?? new Analyzer();
    this.compactionBytes = options.compactionBytes ?? MIN_COMPACTION_BYTES;
    this.embedder = options.embedder;
    this.fusion = { ...DEFAULT_FUSION, ...options.fusion };
    this.denseOptions = options.dense ?? {};
    this.openJournal = options.openJournal ?? ((file) => open(file, 'a'));
  }

  /**
   * Opens (creating if needed) the index under `<dataDir>/index/` and loads every tenant in it, whether it has a
   * snapshot, a journal or both. Fails with a configuration error when another process holds the data dir.
   */
  static async open(dataDir: string, options: EmbeddedStoreOptions = {}): Promise<EmbeddedStore> {
    const indexDir = path.join(dataDir, 'index');
    await mkdir(indexDir, { recursive: true });
    const dirLock = await DataDirLock.acquire(dataDir);
    try {
      const store = new EmbeddedStore(indexDir, dirLock, options);
      const names = await readdir(indexDir);
      for (const name of names) {
        if (name.endsWith('.tmp')) await rm(path.join(indexDir, name), { force: true });
      }
      const bases = new Set(
        names.flatMap((name) =>
          [SNAPSHOT_SUFFIX, JOURNAL_SUFFIX].flatMap((suffix) =>
            name.endsWith(suffix) ? [name.slice(0, -suffix.length)] : [],
          ),
        ),
      );
      for (const base of [...bases].sort()) await store.load(base);
      for (const tenant of store.tenants.values()) await store.loadStaging(tenant);
      return store;
    } catch (error) {
      await dirLock.release();
      throw error;
    }
  }

  async upsertDocuments(
    tenantName: string,
    docs: DocumentChunks[],
    options: UpsertOptions = {},
  ): Promise<UpsertResult[]> {
    const problems = docs.flatMap((doc) => validateDocument(doc) ?? []);
    if (problems.length > 0) throw new InvalidInputError(`rejected documents: ${problems.join('; ')}`);
    return this.exclusive(tenantName, async () => {
      const tenant = this.tenant(tenantName);
      const { changed, results } = this.planUpsert(tenant, docs);
      if (changed.length === 0) return results;
      if (this.reembedding(tenant)) return this.upsertWhileReembedding(tenant, changed, results, options);
      const stored = await this.withVectors(tenant, changed, options);
      const corpusVersion = this.nextVersion(tenant);
      const embedding = this.embedder
        ? { identity: embedderIdentity(this.embedder), dimensions: this.embedder.dimensions }
        : undefined;
      await this.append(tenant, { corpusVersion, op: 'upsert', docs: stored, ...(embedding ? { embedding } : {}) });
      if (embedding) tenant.embedding = embedding;
      for (const doc of stored) this.put(tenant, doc);
      tenant.index.corpusVersion = corpusVersion;
      await this.compactIfDue(tenant);
      return results;
    });
  }

  /** Each document's outcome, and the documents to write: the last copy of a docId in a batch wins, as in order. */
  private planUpsert(tenant: Tenant, docs: DocumentChunks[]): { changed: DocumentChunks[]; results: UpsertResult[] } {
    const latest = new Map(docs.map((doc) => [doc.docId, doc]));
    const changed = [...latest.values()].filter((doc) => tenant.index.contentHash(doc.docId) !== doc.contentHash);
    const results = docs.map((doc): UpsertResult => {
      const stored = tenant.index.contentHash(doc.docId);
      const status = stored === undefined ? 'added' : stored === doc.contentHash ? 'unchanged' : 'updated';
      return { docId: doc.docId, status, chunks: doc.chunks.length };
    });
    return { changed, results };
  }

  async deleteDocuments(tenantName: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    return this.exclusive(tenantName, async () => {
      const unique = [...new Set(docIds)];
      // A tenant that has nothing stored is not created by asking to delete from it.
      const tenant = this.tenants.get(tenantName);
      if (!tenant) return { deleted: [], missing: unique };
      const deleted = unique.filter((docId) => tenant.index.contentHash(docId) !== undefined);
      const missing = unique.filter((docId) => tenant.index.contentHash(docId) === undefined);
      if (deleted.length === 0) return { deleted, missing };
      const corpusVersion = this.nextVersion(tenant);
      await this.append(tenant, { corpusVersion, op: 'delete', docIds: deleted });
      for (const docId of deleted) this.remove(tenant, docId);
      tenant.index.corpusVersion = corpusVersion;
      await this.compactIfDue(tenant);
      return { deleted, missing };
    });
  }

  async search(tenantName: string, request: SearchRequest): Promise<SearchResponse> {
    const hasTerms = this.analyzer.analyze(request.query).length > 0;
    if (!hasTerms && !this.embedder) return { hits: [], reason: 'no-terms' };
    const tenant = this.tenants.get(tenantName);
    if (!tenant || tenant.index.chunkCount === 0) return { hits: [], reason: hasTerms ? 'empty-corpus' : 'no-terms' };
    const feedback = this.feedback.docs > 0 ? this.feedback : undefined;
    const topK = Math.max(0, Math.floor(request.topK));
    const bm25 = request.bm25 ? { ...this.bm25, ...definedOnly(request.bm25) } : this.bm25;
    const lexical = (depth: number) =>
      hasTerms
        ? tenant.index.search(request.query, depth, feedback, bm25).map(({ slot, score }) => ({
            id: tenant.index.chunk(slot)!.id,
            score,
          }))
        : [];
    const respond = (ranked: { id: string; score: number }[], degradedReason?: SearchResponse['degradedReason']) => {
      const hits = ranked.flatMap(({ id, score }) => {
        const chunk = this.chunkById(tenant, id);
        return chunk ? [{ chunkId: chunk.id, docId: chunk.docId, title: chunk.title, text: chunk.text, score }] : [];
      });
      const response: SearchResponse = { hits };
      if (degradedReason) response.degradedReason = degradedReason;
      if (!hasTerms && hits.length === 0) response.reason = 'no-terms';
      return response;
    };
    if (!this.embedder) return respond(lexical(topK));
    if (!this.denseUsable(tenant)) return respond(lexical(topK), 'embedding-mismatch');
    let vector: number[] | undefined;
    try {
      [vector] = await this.embedder.embed([request.query], 'query');
    } catch {
      // The lexical leg alone still answers; the flag lets callers and metrics see the degradation.
      return respond(lexical(topK), 'embedder-unavailable');
    }
    if (!vector || vectorProblem(vector, tenant.dense!.dimensions) !== undefined) {
      return respond(lexical(topK), 'embedder-unavailable');
    }
    const fusion = request.fusion ? { ...this.fusion, ...definedOnly(request.fusion) } : this.fusion;
    const depth = Math.max(topK, fusion.depth);
    const dense = tenant.dense!.search(vector, depth);
    return respond(fuseHybrid(lexical(depth), dense, fusion, topK));
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

  async corpusVersion(tenantName: string): Promise<number> {
    return this.tenants.get(tenantName)?.index.corpusVersion ?? 0;
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
    if (this.closed) return;
    this.closed = true;
    await this.locks.drain();
    await this.dirLock.release();
  }

  async embeddingStatus(tenantName: string): Promise<EmbeddingStatus> {
    const tenant = this.tenants.get(tenantName);
    const configured = this.embedder ? embedderIdentity(this.embedder) : undefined;
    const status: EmbeddingStatus = {
      tenant: tenantName,
      ...(tenant?.embedding ? { live: tenant.embedding.identity } : {}),
      ...(configured ? { configured } : {}),
      documents: tenant?.index.documentCount ?? 0,
      chunks: tenant?.index.chunkCount ?? 0,
      needed: tenant !== undefined && this.needsReembedding(tenant),
    };
    if (tenant?.staging) {
      status.staging = {
        identity: tenant.staging.identity,
        chunksStaged: tenant.index.chunkCount - tenant.staging.pendingChunks,
      };
    }
    return status;
  }

  async tenantsNeedingReembedding(): Promise<string[]> {
    return [...this.tenants.values()].filter((tenant) => this.needsReembedding(tenant)).map((tenant) => tenant.name);
  }

  async beginReembedding(tenantName: string): Promise<EmbeddingStatus> {
    if (!this.embedder) throw new NoEmbedderError(tenantName);
    await this.exclusive(tenantName, async () => {
      const tenant = this.tenants.get(tenantName);
      if (tenant && this.needsReembedding(tenant)) await this.openStaging(tenant);
    });
    return this.embeddingStatus(tenantName);
  }

  /**
   * Embeds the next pending documents outside the tenant's lock (ingestion and deletion go on meanwhile), then
   * stages those still live at the version embedded, fsynced, under it. A document changed in between was staged
   * by its own upsert; one deleted needs nothing.
   */
  async stageEmbeddings(tenantName: string, options: StageOptions): Promise<StageResult> {
    if (!this.embedder) throw new NoEmbedderError(tenantName);
    const maxChunks = Math.max(1, Math.floor(options.maxChunks));
    const tenant = this.tenants.get(tenantName);
    const progress = (documents: number, chunks: number): StageResult => ({
      documents,
      chunks,
      chunksStaged: tenant ? tenant.index.chunkCount - (tenant.staging?.pendingChunks ?? 0) : 0,
      chunksTotal: tenant?.index.chunkCount ?? 0,
    });
    if (!tenant) return progress(0, 0);
    await this.exclusive(tenantName, async () => {
      await this.dropStaleStaging(tenant);
      if (!tenant.staging && this.needsReembedding(tenant)) await this.openStaging(tenant);
    });
    const staging = tenant.staging;
    if (!staging) return progress(0, 0);
    const batch: DocumentChunks[] = [];
    let planned = 0;
    for (const [docId, chunks] of staging.pending) {
      if (batch.length > 0 && planned + chunks > maxChunks) break;
      const contentHash = tenant.index.contentHash(docId);
      const docChunks = tenant.index.chunksOf(docId);
      if (contentHash === undefined || docChunks.length === 0) continue;
      batch.push({ docId, title: docChunks[0]!.title, contentHash, chunks: docChunks });
      planned += docChunks.length;
    }
    if (batch.length === 0) return progress(0, 0);
    const embedded = await this.embedForStaging(tenant, batch);
    let documents = 0;
    let chunks = 0;
    await this.exclusive(tenantName, async () => {
      if (tenant.staging !== staging) return;
      const current = embedded.filter((doc) => tenant.index.contentHash(doc.docId) === doc.contentHash);
      if (current.length === 0) return;
      await this.appendStaged(tenant, staging, current);
      documents = current.length;
      chunks = current.reduce((sum, doc) => sum + doc.chunks.length, 0);
    });
    return progress(documents, chunks);
  }

  /**
   * The one switch: under the tenant's lock, checks that every live chunk has a staged vector of its current
   * version, builds the new dense index from the staging file, writes it as the tenant's snapshot (temp file +
   * rename, so a crash leaves the old vectors or the new, never a mix) with a new corpus version (cached answers
   * came from the old ranking), and only then swaps memory and removes the staging file.
   */
  async switchEmbeddings(tenantName: string): Promise<SwitchResult> {
    const embedder = this.embedder;
    if (!embedder) throw new NoEmbedderError(tenantName);
    const identity = embedderIdentity(embedder);
    return this.exclusive(tenantName, async () => {
      const tenant = this.tenants.get(tenantName);
      const outcome = (switched: boolean, chunksRemaining: number): SwitchResult => ({
        switched,
        chunksRemaining,
        identity,
        corpusVersion: tenant?.index.corpusVersion ?? 0,
      });
      if (!tenant) return outcome(true, 0);
      await this.dropStaleStaging(tenant);
      if (!tenant.staging) {
        if (!this.needsReembedding(tenant)) return outcome(true, 0);
        await this.openStaging(tenant);
      }
      const staging = tenant.staging!;
      recomputePending(tenant, staging);
      if (staging.pendingChunks > 0) return outcome(false, staging.pendingChunks);
      const dense = new DenseIndex(staging.dimensions, this.denseOptions);
      await this.readStaging(tenant, (doc) => {
        if (tenant.index.contentHash(doc.docId) !== doc.contentHash) return;
        const chunks = tenant.index.chunksOf(doc.docId);
        if (chunks.length !== doc.vectors.length) return;
        chunks.forEach((chunk, i) => dense.put(chunk.id, decodeVector(doc.vectors[i]!)));
      });
      // The staged map is rebuilt from the same file, so this holds unless the file lost records since: then the
      // documents it lacks are pending again and the caller stages them.
      for (const entry of tenant.index.documents()) {
        if (!tenant.index.chunksOf(entry.docId).every((chunk) => dense.has(chunk.id)))
          staging.staged.delete(entry.docId);
      }
      recomputePending(tenant, staging);
      if (staging.pendingChunks > 0) return outcome(false, staging.pendingChunks);
      const corpusVersion = this.nextVersion(tenant);
      const embedding = { identity: staging.identity, dimensions: staging.dimensions };
      try {
        await this.writeSnapshot(tenant, { dense, embedding, corpusVersion });
      } catch (error) {
        // The rename may have happened: the next write rewrites the snapshot from memory (the old vectors).
        tenant.journalSuspect = true;
        throw error;
      }
      tenant.dense = dense;
      tenant.embedding = embedding;
      tenant.index.corpusVersion = corpusVersion;
      tenant.staging = undefined;
      // Left behind by a crash here, the file is recognised on open as already switched and removed then.
      await rm(this.stagingFile(tenant), { force: true });
      await syncDirectory(this.indexDir);
      return { switched: true, chunksRemaining: 0, identity, corpusVersion };
    });
  }

  /** Queries would answer `embedding-mismatch`: the configured embedder cannot use the tenant's live vectors. */
  private needsReembedding(tenant: Tenant): boolean {
    return this.embedder !== undefined && tenant.index.chunkCount > 0 && !this.denseUsable(tenant);
  }

  /** Writes go through staging while a re-embedding is under way or due, so live vectors are never mixed. */
  private reembedding(tenant: Tenant): boolean {
    return (
      this.embedder !== undefined &&
      tenant.index.chunkCount > 0 &&
      (tenant.staging !== undefined || this.needsReembedding(tenant))
    );
  }

  /** A staging area that is no longer needed (the tenant was emptied and filled again with the new model). */
  private async dropStaleStaging(tenant: Tenant): Promise<void> {
    if (!tenant.staging || this.needsReembedding(tenant)) return;
    tenant.staging = undefined;
    await rm(this.stagingFile(tenant), { force: true });
    await syncDirectory(this.indexDir);
  }

  /**
   * An upsert into a tenant being re-embedded: documents go in lexically (queries answer lexically meanwhile
   * anyway) and their vectors from the configured embedder into staging, staging first: a crash between the two
   * leaves a staged vector of a version that is not live, which the switch ignores.
   */
  private async upsertWhileReembedding(
    tenant: Tenant,
    changed: DocumentChunks[],
    results: UpsertResult[],
    options: UpsertOptions,
  ): Promise<UpsertResult[]> {
    const staging = await this.openStaging(tenant);
    const embedded = await this.embedForStaging(tenant, changed, options);
    await this.appendStaged(tenant, staging, embedded);
    const corpusVersion = this.nextVersion(tenant);
    await this.append(tenant, { corpusVersion, op: 'upsert', docs: changed });
    for (const doc of changed) this.put(tenant, doc);
    tenant.index.corpusVersion = corpusVersion;
    await this.compactIfDue(tenant);
    return results;
  }

  /**
   * Vectors from the configured embedder for staging. withVectors refuses a tenant whose live vectors came from
   * another model, to keep them unmixed; these go to staging instead, so it embeds as for a tenant with none.
   */
  private embedForStaging(
    tenant: Tenant,
    docs: DocumentChunks[],
    options: UpsertOptions = {},
  ): Promise<StoredDocument[]> {
    return this.withVectors({ ...tenant, embedding: undefined }, docs, options);
  }

  private stagingFile(tenant: Tenant): string {
    return path.join(this.indexDir, `${this.fileBase(tenant.name)}${STAGING_SUFFIX}`);
  }

  /** The tenant's staging area for the configured embedder, created (header written and synced) if absent. */
  private async openStaging(tenant: Tenant): Promise<Staging> {
    if (tenant.staging) return tenant.staging;
    const embedder = this.embedder!;
    const header: StagingHeader = {
      format: STAGING_FORMAT,
      formatVersion: 1,
      tenant: tenant.name,
      identity: embedderIdentity(embedder),
      dimensions: embedder.dimensions,
    };
    const file = this.stagingFile(tenant);
    const temp = `${file}.tmp`;
    const handle = await open(temp, 'w');
    try {
      await handle.write(`${JSON.stringify(header)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
    await syncDirectory(this.indexDir);
    const staging: Staging = {
      identity: header.identity,
      dimensions: header.dimensions,
      staged: new Map(),
      pending: new Map(),
      pendingChunks: 0,
      suspect: false,
    };
    recomputePending(tenant, staging);
    tenant.staging = staging;
    return staging;
  }

  /** Appends one fsynced record of staged vectors; what it holds counts as staged only once it is on disk. */
  private async appendStaged(tenant: Tenant, staging: Staging, docs: StoredDocument[]): Promise<void> {
    const record: StagingRecord = {
      docs: docs.map((doc) => ({ docId: doc.docId, contentHash: doc.contentHash, vectors: doc.vectors ?? [] })),
    };
    const line = `${staging.suspect ? '\n' : ''}${frameRecord(JSON.stringify(record))}`;
    try {
      const handle = await open(this.stagingFile(tenant), 'a');
      try {
        await handle.write(line);
        await handle.datasync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      staging.suspect = true;
      throw error;
    }
    staging.suspect = false;
    for (const doc of docs) markStaged(staging, doc.docId, doc.contentHash, doc.chunks.length);
  }

  /** Calls `onDoc` for every staged document in file order (later records win); undefined when there is no file. */
  private async readStaging(
    tenant: Tenant,
    onDoc: (doc: StagingRecord['docs'][number]) => void,
  ): Promise<{ header: StagingHeader | undefined; endsInNewline: boolean } | undefined> {
    const file = this.stagingFile(tenant);
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
        if (header.format !== STAGING_FORMAT || header.tenant !== tenant.name)
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

  /**
   * Reloads a re-embedding left by an earlier process, so it resumes from its last staged batch. A staging file
   * for another embedder than the configured one, or for a tenant that needs none (switched already, emptied), is
   * removed.
   */
  private async loadStaging(tenant: Tenant): Promise<void> {
    const staged = new Map<string, { contentHash: string; chunks: number }>();
    const read = await this.readStaging(tenant, (doc) =>
      staged.set(doc.docId, { contentHash: doc.contentHash, chunks: doc.vectors.length }),
    );
    if (!read) return;
    const header = read.header;
    const embedder = this.embedder;
    if (
      !header ||
      !embedder ||
      header.identity !== embedderIdentity(embedder) ||
      header.dimensions !== embedder.dimensions ||
      !this.needsReembedding(tenant)
    ) {
      await rm(this.stagingFile(tenant), { force: true });
      return;
    }
    const staging: Staging = {
      identity: header.identity,
      dimensions: header.dimensions,
      staged,
      pending: new Map(),
      pendingChunks: 0,
      suspect: !read.endsInNewline,
    };
    recomputePending(tenant, staging);
    tenant.staging = staging;
  }

  /** The dense leg answers only when every live chunk has a vector from the configured embedder. */
  private denseUsable(tenant: Tenant): boolean {
    return (
      this.embedder !== undefined &&
      tenant.dense !== undefined &&
      tenant.embedding?.identity === embedderIdentity(this.embedder) &&
      tenant.dense.size === tenant.index.chunkCount
    );
  }

  private chunkById(tenant: Tenant, chunkId: string): Chunk | undefined {
    const hash = chunkId.lastIndexOf('#');
    const docId = hash < 0 ? chunkId : chunkId.slice(0, hash);
    return tenant.index.chunksOf(docId).find((candidate) => candidate.id === chunkId);
  }

  /**
   * Embeds `docs` (all of them or none: any failure rejects the batch before it is written) when an embedder is
   * configured, refusing a tenant whose vectors came from a different embedder.
   */
  private async withVectors(tenant: Tenant, docs: DocumentChunks[], options: UpsertOptions): Promise<StoredDocument[]> {
    const embedder = this.embedder;
    if (!embedder) return docs;
    if (tenant.embedding && tenant.embedding.identity !== embedderIdentity(embedder)) {
      throw new RaglineError(
        ErrorType.Configuration,
        `tenant ${tenant.name} holds vectors from embedder ${tenant.embedding.identity}; the configured embedder ` +
          `is ${embedderIdentity(embedder)}. Delete the tenant's documents (or the index directory) and ingest again to ` +
          're-embed; mixing models would make similarities meaningless',
      );
    }
    const vectors = await embedDocuments(embedder, docs, options);
    const chunks = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
    if (vectors.length !== chunks) {
      throw new RaglineError(
        ErrorType.BadResponse,
        `embedder ${embedderIdentity(embedder)} returned ${vectors.length} vectors for ${chunks} chunks; nothing was written`,
      );
    }
    let next = 0;
    return docs.map((doc) => {
      const encoded = doc.chunks.map((chunk) => {
        const vector = vectors[next++]!;
        const problem = vectorProblem(vector, embedder.dimensions);
        if (problem) {
          throw new RaglineError(
            ErrorType.BadResponse,
            `embedder ${embedderIdentity(embedder)} returned a vector for chunk ${chunk.id} that ${problem}; nothing was written`,
          );
        }
        return Buffer.from(Float32Array.from(vector).buffer).toString('base64');
      });
      return { ...doc, vectors: encoded };
    });
  }

  /** Applies one stored document to both legs. */
  private put(tenant: Tenant, doc: StoredDocument): void {
    const { vectors, ...chunks } = doc;
    const previous = tenant.index.chunksOf(doc.docId);
    tenant.index.put(chunks);
    for (const chunk of previous) tenant.dense?.remove(chunk.id);
    if (!vectors || vectors.length !== doc.chunks.length) return;
    const first = Buffer.from(vectors[0]!, 'base64');
    tenant.dense ??= new DenseIndex(first.byteLength / 4, this.denseOptions);
    doc.chunks.forEach((chunk, i) => {
      const bytes = Buffer.from(vectors[i]!, 'base64');
      tenant.dense!.put(chunk.id, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
    });
  }

  private remove(tenant: Tenant, docId: string): void {
    if (tenant.staging) unpend(tenant.staging, docId);
    for (const chunk of tenant.index.chunksOf(docId)) tenant.dense?.remove(chunk.id);
    tenant.index.remove(docId);
    // An emptied tenant holds no vectors, so it may be re-embedded with any model.
    if (tenant.index.chunkCount === 0) {
      tenant.dense = undefined;
      tenant.embedding = undefined;
    }
  }

  private tenant(name: string): Tenant {
    let tenant = this.tenants.get(name);
    if (!tenant) {
      tenant = {
        name,
        index: new TenantIndex(this.analyzer, this.bm25),
        snapshotBytes: 0,
        journalBytes: 0,
        lastVersion: 0,
        journalSuspect: false,
      };
      this.tenants.set(name, tenant);
    }
    return tenant;
  }

  private nextVersion(tenant: Tenant): number {
    tenant.lastVersion = Math.max(tenant.lastVersion, tenant.index.corpusVersion) + 1;
    return tenant.lastVersion;
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

  /** The tenant a file base was made from (the inverse of fileBase), for tenants that have only a journal. */
  private tenantOf(fileBase: string): string | undefined {
    if (fileBase.startsWith('t_')) return fileBase.slice(2);
    if (fileBase.startsWith('h_') && /^[0-9a-f]*$/.test(fileBase.slice(2))) {
      return Buffer.from(fileBase.slice(2), 'hex').toString();
    }
    return undefined;
  }

  private async append(tenant: Tenant, record: JournalRecord): Promise<void> {
    // After a failed write the journal may end in a torn or unacknowledged record: replace it by a snapshot of
    // what memory holds (which never took that write) before appending anything after it.
    if (tenant.journalSuspect) await this.writeSnapshot(tenant);
    const file = path.join(this.indexDir, `${this.fileBase(tenant.name)}${JOURNAL_SUFFIX}`);
    const line = frameRecord(JSON.stringify(record));
    const created = tenant.journalBytes === 0;
    try {
      const handle = await this.openJournal(file);
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

  private async compactIfDue(tenant: Tenant): Promise<void> {
    if (tenant.journalBytes > Math.max(this.compactionBytes, tenant.snapshotBytes)) await this.writeSnapshot(tenant);
  }

  /** Writes the whole tenant as a new snapshot (temp file + rename), then starts an empty journal. */
  private async writeSnapshot(tenant: Tenant, view: SnapshotView = {}): Promise<void> {
    const base = path.join(this.indexDir, this.fileBase(tenant.name));
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
          doc.vectors = chunks.map((chunk) => {
            const vector = dense.get(chunk.id)!;
            return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
          });
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

  private async load(fileBase: string): Promise<void> {
    const base = path.join(this.indexDir, fileBase);
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
          tenant = this.tenant(header.tenant);
          tenant.index.corpusVersion = header.corpusVersion;
          if (header.embedding) tenant.embedding = header.embedding;
          continue;
        }
        this.put(tenant, JSON.parse(line) as StoredDocument);
      }
      if (tenant) tenant.snapshotBytes = snapshotBytes;
    }
    const journalBytes = await size(journal);
    if (journalBytes < 0) return;
    if (!tenant) {
      const name = this.tenantOf(fileBase);
      if (name === undefined) return;
      tenant = this.tenant(name);
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
        for (const doc of record.docs) this.put(tenant, doc);
      } else for (const docId of record.docIds) this.remove(tenant, docId);
      tenant.index.corpusVersion = record.corpusVersion;
    }
    tenant.journalBytes = journalBytes;
    // New records must not follow a torn one, and a journal-only tenant gets its snapshot: fold both into one.
    if (skipped > 0 || snapshotBytes < 0) await this.writeSnapshot(tenant);
  }
}

/** Makes renames, creations and removals in a directory durable (a no-op where directories cannot be opened). */
async function syncDirectory(dir: string): Promise<void> {
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

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Records that a document's current version has staged vectors (no longer pending). */
function markStaged(staging: Staging, docId: string, contentHash: string, chunks: number): void {
  staging.staged.set(docId, { contentHash, chunks });
  unpend(staging, docId);
}

function unpend(staging: Staging, docId: string): void {
  const chunks = staging.pending.get(docId);
  if (chunks === undefined) return;
  staging.pending.delete(docId);
  staging.pendingChunks -= chunks;
}

/** Which live documents lack staged vectors of their current version: one pass over the tenant. */
function recomputePending(tenant: Tenant, staging: Staging): void {
  staging.pending.clear();
  staging.pendingChunks = 0;
  for (const entry of tenant.index.documents()) {
    const chunks = entry.slots.length;
    const staged = staging.staged.get(entry.docId);
    if (staged && staged.contentHash === entry.contentHash && staged.chunks === chunks) continue;
    staging.pending.set(entry.docId, chunks);
    staging.pendingChunks += chunks;
  }
}

function decodeVector(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}
