import type { Chunk } from '../../domain.js';
import type { Analyzer } from '../analyzer.js';
import { DenseIndex, type DenseIndexOptions } from '../dense-index.js';
import { embedderIdentity, type Embedder } from '../embedder.js';
import { TenantIndex, type Bm25Params } from '../lexical-index.js';
import { unpend, type Staging } from './staging.js';
import { decodeVector, type EmbeddingIdentity, type StoredDocument } from './vectors.js';

/**
 * The tenants held in memory: per tenant a lexical index, optionally a dense one, and what its files stand at. The
 * shelf applies a stored document to both legs at once, so they hold the same chunks.
 */

export interface Tenant {
  name: string;
  index: TenantIndex;
  snapshotBytes: number;
  journalBytes: number;
  dense?: DenseIndex;
  embedding?: EmbeddingIdentity;
  /** Highest corpus version ever given to a journal record, applied or not, so versions never repeat. */
  lastVersion: number;
  /** A write failed part-way: the journal's tail is unknown until the snapshot is rewritten. */
  journalSuspect: boolean;
  /** New vectors being computed for the configured embedder (a re-embedding in progress). */
  staging?: Staging;
}

export class TenantShelf {
  private readonly tenants = new Map<string, Tenant>();

  constructor(
    private readonly analyzer: Analyzer,
    private readonly bm25: Bm25Params,
    private readonly denseOptions: DenseIndexOptions,
  ) {}

  get size(): number {
    return this.tenants.size;
  }

  /** The tenant if it holds anything; asking never creates one. */
  find(name: string): Tenant | undefined {
    return this.tenants.get(name);
  }

  /** The tenant, created empty if absent (for writes and loading). */
  get(name: string): Tenant {
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

  values(): IterableIterator<Tenant> {
    return this.tenants.values();
  }

  /** Applies one stored document to both legs. */
  put(tenant: Tenant, doc: StoredDocument): void {
    const { vectors, ...chunks } = doc;
    const previous = tenant.index.chunksOf(doc.docId);
    tenant.index.put(chunks);
    for (const chunk of previous) tenant.dense?.remove(chunk.id);
    if (!vectors || vectors.length !== doc.chunks.length) return;
    const first = Buffer.from(vectors[0]!, 'base64');
    tenant.dense ??= new DenseIndex(first.byteLength / 4, this.denseOptions);
    doc.chunks.forEach((chunk, i) => tenant.dense!.put(chunk.id, decodeVector(vectors[i]!)));
  }

  remove(tenant: Tenant, docId: string): void {
    if (tenant.staging) unpend(tenant.staging, docId);
    for (const chunk of tenant.index.chunksOf(docId)) tenant.dense?.remove(chunk.id);
    tenant.index.remove(docId);
    // An emptied tenant holds no vectors, so it may be re-embedded with any model.
    if (tenant.index.chunkCount === 0) {
      tenant.dense = undefined;
      tenant.embedding = undefined;
    }
  }
}

export function nextVersion(tenant: Tenant): number {
  tenant.lastVersion = Math.max(tenant.lastVersion, tenant.index.corpusVersion) + 1;
  return tenant.lastVersion;
}

export function chunkById(tenant: Tenant, chunkId: string): Chunk | undefined {
  // Chunk ids are `<docId>#<position>`, so the document narrows the lookup without a per-chunk map.
  const hash = chunkId.lastIndexOf('#');
  const docId = hash < 0 ? chunkId : chunkId.slice(0, hash);
  return tenant.index.chunksOf(docId).find((candidate) => candidate.id === chunkId);
}

/** The dense leg answers only when every live chunk has a vector from the configured embedder. */
export function denseUsable(tenant: Tenant, embedder: Embedder | undefined): boolean {
  return (
    embedder !== undefined &&
    tenant.dense !== undefined &&
    tenant.embedding?.identity === embedderIdentity(embedder) &&
    tenant.dense.size === tenant.index.chunkCount
  );
}
