/**
 * Domain types shared by activities and adapters. No runtime dependencies: workflows may import the types.
 */

/** One source document as parsed from a file, before chunking. */
export interface SourceDocument {
  /** Stable id within its tenant (file name without extension, or a JSONL `_id`). */
  id: string;
  title: string;
  text: string;
  /** Where it came from, for operators (a path, or path#line). */
  source?: string;
}

/** A retrievable piece of one document. */
export interface Chunk {
  /** `<docId>#<position>` */
  id: string;
  docId: string;
  title: string;
  text: string;
  /** 0-based position within its document. */
  position: number;
}

/** A document ready for a store: its chunks, and a hash of its content that makes re-ingestion idempotent. */
export interface DocumentChunks {
  docId: string;
  title: string;
  contentHash: string;
  chunks: Chunk[];
}

export type UpsertStatus = 'added' | 'updated' | 'unchanged';

export interface UpsertResult {
  docId: string;
  status: UpsertStatus;
  chunks: number;
}

export interface SearchRequest {
  query: string;
  topK: number;
  /**
   * The tenant's BM25 parameters when they differ from the store's defaults (set by the improvement loop or an
   * operator). The embedded index honours them; Qdrant computes BM25 itself and ignores them.
   */
  bm25?: { k1?: number; b?: number; titleWeight?: number };
  /**
   * The tenant's hybrid fusion parameters when they differ from the store's configured ones: the dense leg's weight
   * (weighted fusion) and RRF's k. Used only when a dense leg answers; Qdrant honours `rrfK` alone.
   */
  fusion?: { denseWeight?: number; rrfK?: number };
}

export interface SearchHit {
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  score: number;
}

export interface SearchResponse {
  hits: SearchHit[];
  /** Set when the query could not be searched at all, e.g. `no-terms` when it analyses to nothing. */
  reason?: 'no-terms' | 'empty-corpus';
  /**
   * Set when a configured dense leg could not be used and the hits are lexical only: the embedder failed
   * (`embedder-unavailable`), or the tenant's vectors come from another embedding model or are incomplete
   * (`embedding-mismatch`).
   */
  degradedReason?: 'embedder-unavailable' | 'embedding-mismatch';
}

export interface CorpusStats {
  documents: number;
  chunks: number;
  corpusVersion: number;
}

export interface HealthStatus {
  ok: boolean;
  latencyMs: number;
  detail?: string;
  error?: string;
}

/**
 * Where chunks live and are searched: the embedded lexical index by default, Qdrant when configured.
 * A tenant is a hard boundary: nothing written for one tenant is ever returned for another.
 * Every change to a tenant's corpus moves its `corpusVersion`, which cache keys carry.
 */
/** How the caller of a long upsert follows and stops it. */
export interface UpsertOptions {
  /** Chunks embedded so far of those this upsert embeds (cache hits first), as the embedder's requests complete. */
  onEmbedded?: (embedded: number, total: number) => void;
  /** Stops the embedding requests (an activity's cancellation); nothing is written then. */
  signal?: AbortSignal;
}

export interface ChunkStore {
  readonly kind: string;
  upsertDocuments(tenant: string, docs: DocumentChunks[], options?: UpsertOptions): Promise<UpsertResult[]>;
  deleteDocuments(tenant: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }>;
  search(tenant: string, request: SearchRequest): Promise<SearchResponse>;
  getChunks(tenant: string, chunkIds: string[]): Promise<Chunk[]>;
  /** Content hash of a document, or undefined when the tenant has no such document. */
  documentHash(tenant: string, docId: string): Promise<string | undefined>;
  stats(tenant: string): Promise<CorpusStats>;
  /**
   * The tenant's corpus version alone: what every query's cache keys need. Cheaper than {@link stats}, which also
   * counts documents and chunks (on Qdrant, exact counts over the tenant's whole corpus).
   */
  corpusVersion(tenant: string): Promise<number>;
  health(): Promise<HealthStatus>;
  close(): Promise<void>;
}

/** One retrieved chunk as handed to a generator: 1-based `n` is the citation marker `[n]`. */
export interface ContextChunk {
  n: number;
  chunkId: string;
  docId: string;
  title: string;
  text: string;
  score: number;
}

export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
}

export interface GeneratedAnswer {
  answer: string;
  /** Citation numbers used by the answer that exist in the context (1-based). */
  citations: number[];
  /** `extractive` or the LLM's model name. */
  model: string;
  usage?: TokenUsage;
  /** Set when the answer cites nothing valid. */
  uncited?: boolean;
  /** Whether the LLM-response cache served it. */
  cached?: boolean;
}

export interface GenerateRequest {
  query: string;
  /** Keeps per-tenant caches apart (the LLM-response cache). */
  tenant?: string;
  chunks: ContextChunk[];
  signal?: AbortSignal;
  /**
   * Set when someone is listening for the answer as it is written: a generator that can stream calls it with each
   * piece of text, in order. The returned answer stays authoritative (citations checked, whitespace trimmed).
   */
  onDelta?: (text: string) => void;
}

/** Turns a question and its retrieved chunks into a cited answer. */
export interface AnswerGenerator {
  readonly model: string;
  generate(request: GenerateRequest): Promise<GeneratedAnswer>;
  health(): Promise<HealthStatus>;
}
