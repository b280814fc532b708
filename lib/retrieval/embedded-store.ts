import { access, constants, mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
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
import type { DenseIndexOptions } from './dense-index.js';
import { embedderIdentity, type Embedder } from './embedder.js';
import { DEFAULT_FUSION, type FusionParams } from './fusion.js';
import type { Bm25Params, FeedbackParams } from './lexical-index.js';
import { DataDirLock } from './data-dir-lock.js';
import type { EmbeddingStatus, ReembeddableStore, StageOptions, StageResult, SwitchResult } from './reembedding.js';
import { TenantLock } from './tenant-lock.js';
import { IndexPersistence } from './embedded/persistence.js';
import { Reembedder } from './embedded/reembedder.js';
import { searchTenant, type SearchSettings } from './embedded/search.js';
import { chunkById, nextVersion, TenantShelf } from './embedded/tenant.js';
import { planUpsert, validateDocument } from './embedded/upsert-plan.js';
import { withVectors } from './embedded/vectors.js';

export { validateDocument } from './embedded/upsert-plan.js';

/**
 * The default ChunkStore: an in-process BM25F index per tenant, persisted under `<dataDir>/index/`. This class
 * only composes the parts under `embedded/`:
 *
 * - `tenant.ts` holds each tenant's lexical index (lexical-index.ts) and, with an embedder, its DenseIndex.
 * - `persistence.ts` keeps each tenant as a snapshot plus an fsynced append-only journal (records framed by
 *   `framing.ts`, files named by `files.ts`), so an activity that returns has made its write durable.
 * - `vectors.ts` computes every chunk's vector before the write, carried in the same journal record and snapshot
 *   line as its text, so the lexical and dense parts can never disagree; a failing embedder fails the whole batch.
 * - `search.ts` fuses both legs (FusionParams), or answers lexically and says so in `degradedReason`.
 * - `reembedder.ts` (with `staging.ts`, `staging-file.ts`) re-embeds a tenant with another model while it answers.
 *
 * A tenant records the embedder identity its vectors came from and never mixes another's into them. One process
 * owns a data directory, enforced by a lock file; two workers must not share one. Writes are serialised per tenant.
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

const MIN_COMPACTION_BYTES = 8 * 1024 * 1024;

export class EmbeddedStore implements ChunkStore, ReembeddableStore {
  readonly kind = 'embedded';
  private readonly locks = new TenantLock();
  private readonly settings: SearchSettings;
  private readonly embedder: Embedder | undefined;
  private readonly shelf: TenantShelf;
  private readonly persistence: IndexPersistence;
  private readonly reembedder: Reembedder;
  private closed = false;

  private constructor(
    private readonly indexDir: string,
    private readonly dirLock: DataDirLock,
    options: EmbeddedStoreOptions,
  ) {
    const bm25 = { ...DEFAULT_BM25, ...options.bm25 };
    const analyzer = options.analyzer ?? new Analyzer();
    const denseOptions = options.dense ?? {};
    this.embedder = options.embedder;
    this.settings = {
      analyzer,
      embedder: options.embedder,
      bm25,
      feedback: { ...DEFAULT_FEEDBACK, ...options.feedback },
      fusion: { ...DEFAULT_FUSION, ...options.fusion },
    };
    this.shelf = new TenantShelf(analyzer, bm25, denseOptions);
    this.persistence = new IndexPersistence(indexDir, this.shelf, {
      compactionBytes: options.compactionBytes ?? MIN_COMPACTION_BYTES,
      openJournal: options.openJournal ?? ((file) => open(file, 'a')),
    });
    this.reembedder = new Reembedder({
      indexDir,
      shelf: this.shelf,
      persistence: this.persistence,
      embedder: options.embedder,
      denseOptions,
      exclusive: (tenant, work) => this.exclusive(tenant, work),
    });
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
      await store.persistence.loadAll();
      for (const tenant of store.shelf.values()) await store.reembedder.loadStaging(tenant);
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
      const tenant = this.shelf.get(tenantName);
      const { changed, results } = planUpsert(tenant.index, docs);
      if (changed.length === 0) return results;
      if (this.reembedder.underway(tenant)) return this.reembedder.upsert(tenant, changed, results, options);
      const stored = await withVectors(this.embedder, tenant, changed, options);
      const corpusVersion = nextVersion(tenant);
      const embedding = this.embedder
        ? { identity: embedderIdentity(this.embedder), dimensions: this.embedder.dimensions }
        : undefined;
      await this.persistence.append(tenant, {
        corpusVersion,
        op: 'upsert',
        docs: stored,
        ...(embedding ? { embedding } : {}),
      });
      if (embedding) tenant.embedding = embedding;
      for (const doc of stored) this.shelf.put(tenant, doc);
      tenant.index.corpusVersion = corpusVersion;
      await this.persistence.compactIfDue(tenant);
      return results;
    });
  }

  async deleteDocuments(tenantName: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    return this.exclusive(tenantName, async () => {
      const unique = [...new Set(docIds)];
      // A tenant that has nothing stored is not created by asking to delete from it.
      const tenant = this.shelf.find(tenantName);
      if (!tenant) return { deleted: [], missing: unique };
      const deleted = unique.filter((docId) => tenant.index.contentHash(docId) !== undefined);
      const missing = unique.filter((docId) => tenant.index.contentHash(docId) === undefined);
      if (deleted.length === 0) return { deleted, missing };
      const corpusVersion = nextVersion(tenant);
      await this.persistence.append(tenant, { corpusVersion, op: 'delete', docIds: deleted });
      for (const docId of deleted) this.shelf.remove(tenant, docId);
      tenant.index.corpusVersion = corpusVersion;
      await this.persistence.compactIfDue(tenant);
      return { deleted, missing };
    });
  }

  async search(tenantName: string, request: SearchRequest): Promise<SearchResponse> {
    return searchTenant(this.shelf.find(tenantName), request, this.settings);
  }

  async getChunks(tenantName: string, chunkIds: string[]): Promise<Chunk[]> {
    const tenant = this.shelf.find(tenantName);
    if (!tenant) return [];
    return chunkIds.flatMap((chunkId) => chunkById(tenant, chunkId) ?? []);
  }

  async documentHash(tenantName: string, docId: string): Promise<string | undefined> {
    return this.shelf.find(tenantName)?.index.contentHash(docId);
  }

  async corpusVersion(tenantName: string): Promise<number> {
    return this.shelf.find(tenantName)?.index.corpusVersion ?? 0;
  }

  async stats(tenantName: string): Promise<CorpusStats> {
    const index = this.shelf.find(tenantName)?.index;
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
      for (const tenant of this.shelf.values()) chunks += tenant.index.chunkCount;
      const detail = `${this.shelf.size} tenants, ${chunks} chunks`;
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

  embeddingStatus(tenantName: string): Promise<EmbeddingStatus> {
    return this.reembedder.embeddingStatus(tenantName);
  }

  tenantsNeedingReembedding(): Promise<string[]> {
    return this.reembedder.tenantsNeedingReembedding();
  }

  beginReembedding(tenantName: string): Promise<EmbeddingStatus> {
    return this.reembedder.beginReembedding(tenantName);
  }

  stageEmbeddings(tenantName: string, options: StageOptions): Promise<StageResult> {
    return this.reembedder.stageEmbeddings(tenantName, options);
  }

  switchEmbeddings(tenantName: string): Promise<SwitchResult> {
    return this.reembedder.switchEmbeddings(tenantName);
  }

  /** Serialises writes per tenant; searches need no lock because index mutations are synchronous. */
  private exclusive<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new RaglineError(ErrorType.Unavailable, 'embedded store is closed'));
    return this.locks.run(tenant, work);
  }
}
