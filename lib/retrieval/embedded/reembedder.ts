import { rm } from 'node:fs/promises';
import type { DocumentChunks, UpsertOptions, UpsertResult } from '../../domain.js';
import { DenseIndex, type DenseIndexOptions } from '../dense-index.js';
import { embedderIdentity, type Embedder } from '../embedder.js';
import {
  NoEmbedderError,
  type EmbeddingStatus,
  type Exclusive,
  type ReembeddableStore,
  type StageOptions,
  type StageResult,
  type SwitchResult,
} from '../reembedding.js';
import { syncDirectory } from './files.js';
import type { IndexPersistence } from './persistence.js';
import { createStaging, markStaged, recomputePending, type Staging } from './staging.js';
import { appendStagingRecord, createStagingFile, readStagingFile, stagingFile } from './staging-file.js';
import { denseUsable, nextVersion, type Tenant, type TenantShelf } from './tenant.js';
import { decodeVector, withVectors, type StoredDocument } from './vectors.js';

/**
 * The embedded store's re-embedding (ReembeddableStore): turning embeddings on, or changing the model, over an
 * indexed tenant. New vectors are staged (staging-file.ts) while queries keep the live index, and replace the live
 * vectors in one snapshot rewrite once they cover every live chunk. Ingestion meanwhile stores documents lexically
 * and stages their new-model vectors in the same step, so nothing ingested during a reindex is left behind.
 */

export interface ReembedderDeps {
  indexDir: string;
  shelf: TenantShelf;
  persistence: IndexPersistence;
  embedder: Embedder | undefined;
  denseOptions: DenseIndexOptions;
  exclusive: Exclusive;
}

export class Reembedder implements ReembeddableStore {
  private readonly indexDir: string;
  private readonly shelf: TenantShelf;
  private readonly persistence: IndexPersistence;
  private readonly embedder: Embedder | undefined;
  private readonly denseOptions: DenseIndexOptions;
  private readonly exclusive: Exclusive;

  constructor(deps: ReembedderDeps) {
    this.indexDir = deps.indexDir;
    this.shelf = deps.shelf;
    this.persistence = deps.persistence;
    this.embedder = deps.embedder;
    this.denseOptions = deps.denseOptions;
    this.exclusive = deps.exclusive;
  }

  async embeddingStatus(tenantName: string): Promise<EmbeddingStatus> {
    const tenant = this.shelf.find(tenantName);
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
    return [...this.shelf.values()].filter((tenant) => this.needsReembedding(tenant)).map((tenant) => tenant.name);
  }

  async beginReembedding(tenantName: string): Promise<EmbeddingStatus> {
    if (!this.embedder) throw new NoEmbedderError(tenantName);
    await this.exclusive(tenantName, async () => {
      const tenant = this.shelf.find(tenantName);
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
    const tenant = this.shelf.find(tenantName);
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
      const tenant = this.shelf.find(tenantName);
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
      recomputePending(tenant.index, staging);
      if (staging.pendingChunks > 0) return outcome(false, staging.pendingChunks);
      const dense = new DenseIndex(staging.dimensions, this.denseOptions);
      await readStagingFile(stagingFile(this.indexDir, tenant.name), tenant.name, (doc) => {
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
      recomputePending(tenant.index, staging);
      if (staging.pendingChunks > 0) return outcome(false, staging.pendingChunks);
      const corpusVersion = nextVersion(tenant);
      const embedding = { identity: staging.identity, dimensions: staging.dimensions };
      try {
        await this.persistence.writeSnapshot(tenant, { dense, embedding, corpusVersion });
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
      await rm(stagingFile(this.indexDir, tenant.name), { force: true });
      await syncDirectory(this.indexDir);
      return { switched: true, chunksRemaining: 0, identity, corpusVersion };
    });
  }

  /** Queries would answer `embedding-mismatch`: the configured embedder cannot use the tenant's live vectors. */
  needsReembedding(tenant: Tenant): boolean {
    return this.embedder !== undefined && tenant.index.chunkCount > 0 && !denseUsable(tenant, this.embedder);
  }

  /** Writes go through staging while a re-embedding is under way or due, so live vectors are never mixed. */
  underway(tenant: Tenant): boolean {
    return (
      this.embedder !== undefined &&
      tenant.index.chunkCount > 0 &&
      (tenant.staging !== undefined || this.needsReembedding(tenant))
    );
  }

  /**
   * An upsert into a tenant being re-embedded (under its lock): documents go in lexically (queries answer lexically
   * meanwhile anyway) and their vectors from the configured embedder into staging, staging first: a crash between
   * the two leaves a staged vector of a version that is not live, which the switch ignores.
   */
  async upsert(
    tenant: Tenant,
    changed: DocumentChunks[],
    results: UpsertResult[],
    options: UpsertOptions,
  ): Promise<UpsertResult[]> {
    const staging = await this.openStaging(tenant);
    const embedded = await this.embedForStaging(tenant, changed, options);
    await this.appendStaged(tenant, staging, embedded);
    const corpusVersion = nextVersion(tenant);
    await this.persistence.append(tenant, { corpusVersion, op: 'upsert', docs: changed });
    for (const doc of changed) this.shelf.put(tenant, doc);
    tenant.index.corpusVersion = corpusVersion;
    await this.persistence.compactIfDue(tenant);
    return results;
  }

  /**
   * Reloads a re-embedding left by an earlier process, so it resumes from its last staged batch. A staging file
   * for another embedder than the configured one, or for a tenant that needs none (switched already, emptied), is
   * removed.
   */
  async loadStaging(tenant: Tenant): Promise<void> {
    const staged: Staging['staged'] = new Map();
    const file = stagingFile(this.indexDir, tenant.name);
    const read = await readStagingFile(file, tenant.name, (doc) =>
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
      await rm(file, { force: true });
      return;
    }
    tenant.staging = createStaging(tenant.index, header.identity, header.dimensions, staged, !read.endsInNewline);
  }

  /** A staging area that is no longer needed (the tenant was emptied and filled again with the new model). */
  private async dropStaleStaging(tenant: Tenant): Promise<void> {
    if (!tenant.staging || this.needsReembedding(tenant)) return;
    tenant.staging = undefined;
    await rm(stagingFile(this.indexDir, tenant.name), { force: true });
    await syncDirectory(this.indexDir);
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
    return withVectors(this.embedder, { name: tenant.name }, docs, options);
  }

  /** The tenant's staging area for the configured embedder, created (header written and synced) if absent. */
  private async openStaging(tenant: Tenant): Promise<Staging> {
    if (tenant.staging) return tenant.staging;
    const embedder = this.embedder!;
    const header = await createStagingFile(this.indexDir, tenant.name, embedderIdentity(embedder), embedder.dimensions);
    const staging = createStaging(tenant.index, header.identity, header.dimensions, new Map(), false);
    tenant.staging = staging;
    return staging;
  }

  /** Appends one fsynced record of staged vectors; what it holds counts as staged only once it is on disk. */
  private async appendStaged(tenant: Tenant, staging: Staging, docs: StoredDocument[]): Promise<void> {
    const staged = docs.map((doc) => ({ docId: doc.docId, contentHash: doc.contentHash, vectors: doc.vectors ?? [] }));
    try {
      await appendStagingRecord(stagingFile(this.indexDir, tenant.name), staged, staging.suspect);
    } catch (error) {
      staging.suspect = true;
      throw error;
    }
    staging.suspect = false;
    for (const doc of docs) markStaged(staging, doc.docId, doc.contentHash, doc.chunks.length);
  }
}
