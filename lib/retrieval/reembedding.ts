import { ErrorType, RaglineError } from '../errors.js';

/**
 * Re-embedding a tenant that was indexed without vectors, or with another embedding model, while it keeps
 * answering: new vectors are computed in batches into a staging area beside the live index and replace the live
 * vectors in one switch once every live chunk has one. The reindex workflow drives it (workflows/reindex-embeddings.ts).
 */

/** Where a tenant's vectors stand against the configured embedder. */
export interface EmbeddingStatus {
  tenant: string;
  /** Identity of the embedder the live vectors came from; absent when the tenant has none. */
  live?: string;
  /** Identity of the configured embedder; absent when none is configured. */
  configured?: string;
  documents: number;
  chunks: number;
  /**
   * The configured embedder cannot use the live vectors (another model, or some chunks have none), so queries
   * answer lexically (`embedding-mismatch`) until a reindex switches: re-embedding is needed.
   */
  needed: boolean;
  /** The staging area, when a re-embedding has begun. */
  staging?: {
    identity: string;
    /** Live chunks that have a staged vector of the current version of their document. */
    chunksStaged: number;
  };
}

export interface StageOptions {
  /** Chunks to embed in this batch (whole documents: at least one document, even a larger one). */
  maxChunks: number;
}

export interface StageResult {
  /** Documents and chunks embedded and staged by this call. */
  documents: number;
  chunks: number;
  /** Live chunks staged so far, this call included. */
  chunksStaged: number;
  /** Live chunks of the tenant now (ingestion may add some while a reindex runs). */
  chunksTotal: number;
}

export interface SwitchResult {
  /** False when some live chunk has no staged vector yet (ingested or changed since): stage more, then switch. */
  switched: boolean;
  /** Live chunks still without a staged vector. */
  chunksRemaining: number;
  identity: string;
  corpusVersion: number;
}

/** A store that can re-embed a tenant in the background: the embedded store and QdrantStore are. */
/** Runs `work` under the tenant's write lock (and refuses once the store is closed); both stores' reembedders take one. */
export type Exclusive = <T>(tenant: string, work: () => Promise<T>) => Promise<T>;

export interface ReembeddableStore {
  embeddingStatus(tenant: string): Promise<EmbeddingStatus>;
  /** Tenants whose live vectors the configured embedder cannot use: what a worker re-embeds at start-up. */
  tenantsNeedingReembedding(): Promise<string[]>;
  /** Opens (or keeps) the tenant's staging area for the configured embedder; returns the status after it. */
  beginReembedding(tenant: string): Promise<EmbeddingStatus>;
  /** Embeds the next documents that have no staged vector and stages them durably. */
  stageEmbeddings(tenant: string, options: StageOptions): Promise<StageResult>;
  /** Makes the staged vectors the live ones in one step, when they cover every live chunk. */
  switchEmbeddings(tenant: string): Promise<SwitchResult>;
}

export function isReembeddable(store: unknown): store is ReembeddableStore {
  const candidate = store as Partial<ReembeddableStore> | undefined;
  return (
    typeof candidate?.embeddingStatus === 'function' &&
    typeof candidate.beginReembedding === 'function' &&
    typeof candidate.stageEmbeddings === 'function' &&
    typeof candidate.switchEmbeddings === 'function' &&
    typeof candidate.tenantsNeedingReembedding === 'function'
  );
}

/** The configured store cannot re-embed in the background (a configuration matter: retrying will not help). */
export class ReembeddingUnsupportedError extends RaglineError {
  constructor(store: string) {
    super(
      ErrorType.Configuration,
      `the ${store} store cannot re-embed a corpus in the background yet; to change its embedding model, delete the ` +
        "tenant's documents and ingest them again with the new model configured",
    );
  }
}

/** A re-embedding was asked of a store with no embedder configured (OPENAI_EMBEDDING_MODEL unset). */
export class NoEmbedderError extends RaglineError {
  constructor(tenant: string) {
    super(
      ErrorType.Configuration,
      `cannot re-embed tenant ${tenant}: no embedding model is configured (set OPENAI_EMBEDDING_MODEL on the worker)`,
    );
  }
}
