import { QdrantClient } from '@qdrant/js-client-rest';
import type {
  Chunk,
  ChunkStore,
  CorpusStats,
  DocumentChunks,
  HealthStatus,
  SearchHit,
  SearchRequest,
  SearchResponse,
  UpsertOptions,
  UpsertResult,
} from '../domain.js';
import { InvalidInputError } from '../errors.js';
import { Analyzer } from './analyzer.js';
import { validateDocument } from './embedded-store.js';
import { embedDocuments, type Embedder } from './embedder.js';
import { DEFAULT_RRF_K } from './fusion.js';
import { describeQdrantError, layoutProblem, QdrantLayoutError, unavailable } from './qdrant/layout.js';
import {
  DENSE,
  documentSparse,
  match,
  matchAny,
  pointId,
  querySparse,
  SPARSE,
  type ChunkPayload,
} from './qdrant/points.js';
import {
  bumpVersion,
  countChunks,
  readCorpusVersion,
  storedHashes,
  type CollectionAccess,
} from './qdrant/tenant-points.js';
import { TenantLock } from './tenant-lock.js';

/**
 * ChunkStore on Qdrant: one collection shared by all tenants, the tenant a keyword payload indexed with
 * `is_tenant: true` and present in every filter this class builds, so no request can cross tenants.
 *
 * Each chunk point carries a sparse vector "bm25" (the analyser's terms hashed to uint32 indices, values the
 * BM25 document-side saturation; Qdrant applies idf through `modifier: 'idf'`) and, with an embedder, a dense
 * vector "dense". With both, search is hybrid through the Query API: both legs prefetched under the tenant
 * filter and fused by reciprocal rank fusion with explicit k. A tenant's corpus version is the number of vectorless
 * "version" points it has (one added per change, see `bumpVersion` in qdrant/tenant-points.ts), plus the value of the
 * single "meta" point that collections written before that scheme carry.
 */

export interface QdrantStoreOptions {
  url: string;
  apiKey?: string;
  collection: string;
  /** When set, chunks also get dense vectors and search is hybrid. */
  embedder?: Embedder;
  /** @default 60 (see fusion.ts) */
  rrfK?: number;
  /**
   * `rrf` (with rrfK), or `dbsf`: Qdrant's distribution-based score fusion, its normalised-score fusion without
   * per-leg weights (the bench compares them). @default rrf
   */
  fusion?: 'rrf' | 'dbsf';
  /** Candidates each leg contributes to the fusion, as a multiple of topK. @default 4 */
  prefetchFactor?: number;
  /** Average chunk length (terms) assumed by the sparse BM25 weights; Qdrant cannot know the live average. @default 120 */
  averageLength?: number;
  /** Points per upsert request. @default 256 */
  batchSize?: number;
}

export interface QdrantStoreDeps {
  client?: QdrantClient;
  analyzer?: Analyzer;
}

export class QdrantStore implements ChunkStore {
  readonly kind = 'qdrant';
  private readonly client: QdrantClient;
  private readonly analyzer: Analyzer;
  private readonly collection: string;
  private readonly locks = new TenantLock();
  private ready: Promise<void> | undefined;

  constructor(
    private readonly options: QdrantStoreOptions,
    deps: QdrantStoreDeps = {},
  ) {
    this.collection = options.collection;
    this.client =
      deps.client ?? new QdrantClient({ url: options.url, apiKey: options.apiKey, checkCompatibility: false });
    this.analyzer = deps.analyzer ?? new Analyzer();
  }

  async upsertDocuments(tenant: string, docs: DocumentChunks[], options: UpsertOptions = {}): Promise<UpsertResult[]> {
    const problems = docs.flatMap((doc) => validateDocument(doc) ?? []);
    if (problems.length > 0) throw new InvalidInputError(`rejected documents: ${problems.join('; ')}`);
    await this.ensureCollection();
    return this.exclusive(tenant, async () => {
      const stored = await storedHashes(this.access, tenant, [...new Set(docs.map((doc) => doc.docId))]);
      const results = docs.map((doc): UpsertResult => {
        const hash = stored.get(doc.docId);
        const status = hash === undefined ? 'added' : hash === doc.contentHash ? 'unchanged' : 'updated';
        return { docId: doc.docId, status, chunks: doc.chunks.length };
      });
      const changed = [...new Map(docs.map((doc) => [doc.docId, doc])).values()].filter(
        (doc) => stored.get(doc.docId) !== doc.contentHash,
      );
      if (changed.length === 0) return results;
      const chunks = changed.flatMap((doc) => doc.chunks.map((chunk) => ({ doc, chunk })));
      // Every vector first, then the writes: an embedding failure leaves the collection as it was.
      const embedder = this.options.embedder;
      const vectors = embedder ? await embedDocuments(embedder, changed, options) : undefined;
      const batchSize = this.options.batchSize ?? 256;
      for (let start = 0; start < chunks.length; start += batchSize) {
        const batch = chunks.slice(start, start + batchSize);
        const dense = vectors?.slice(start, start + batchSize);
        const points = batch.map(({ doc, chunk }, i) => {
          const payload: ChunkPayload = {
            kind: 'chunk',
            tenant,
            docId: doc.docId,
            chunkId: chunk.id,
            title: chunk.title,
            docTitle: doc.title,
            text: chunk.text,
            position: chunk.position,
            contentHash: doc.contentHash,
          };
          const vector: Record<string, unknown> = {
            [SPARSE]: documentSparse(this.analyzer, chunk, this.options.averageLength ?? 120),
          };
          if (dense) vector[DENSE] = dense[i]!;
          return { id: pointId(tenant, chunk.id), vector, payload: { ...payload } };
        });
        await this.call('upsert', () => this.client.upsert(this.collection, { wait: true, points: points as never }));
      }
      // New points are written first and the stale ones removed after, so a document is never absent mid-update.
      await this.call('delete', () =>
        this.client.delete(this.collection, {
          wait: true,
          filter: {
            must: [match('kind', 'chunk'), match('tenant', tenant)],
            should: changed.map((doc) => ({
              must: [match('docId', doc.docId)],
              must_not: [match('contentHash', doc.contentHash)],
            })),
          } as never,
        }),
      );
      await bumpVersion(this.access, tenant);
      return results;
    });
  }

  async deleteDocuments(tenant: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    await this.ensureCollection();
    return this.exclusive(tenant, async () => {
      const unique = [...new Set(docIds)];
      const stored = await storedHashes(this.access, tenant, unique);
      const deleted = unique.filter((docId) => stored.has(docId));
      const missing = unique.filter((docId) => !stored.has(docId));
      if (deleted.length === 0) return { deleted, missing };
      await this.call('delete', () =>
        this.client.delete(this.collection, {
          wait: true,
          filter: { must: [match('kind', 'chunk'), match('tenant', tenant), matchAny('docId', deleted)] } as never,
        }),
      );
      await bumpVersion(this.access, tenant);
      return { deleted, missing };
    });
  }

  async search(tenant: string, request: SearchRequest): Promise<SearchResponse> {
    const terms = this.analyzer.analyze(request.query);
    if (terms.length === 0) return { hits: [], reason: 'no-terms' };
    await this.ensureCollection();
    const filter = { must: [match('kind', 'chunk'), match('tenant', tenant)] };
    const sparse = querySparse(terms);
    const candidates = request.topK * (this.options.prefetchFactor ?? 4);
    let response: { points: { score: number; payload?: Record<string, unknown> | null }[] };
    let vector: number[] | undefined;
    let degradedReason: SearchResponse['degradedReason'];
    if (this.options.embedder) {
      // The sparse leg alone still answers when the embedder is down; the response says so.
      vector = await this.options.embedder.embed([request.query], 'query').then(
        ([embedded]) => embedded,
        () => undefined,
      );
      if (!vector) degradedReason = 'embedder-unavailable';
    }
    if (vector) {
      response = await this.call('query', () =>
        this.client.query(this.collection, {
          prefetch: [
            { query: vector, using: DENSE, filter, limit: candidates },
            { query: sparse, using: SPARSE, filter, limit: candidates },
          ],
          query:
            this.options.fusion === 'dbsf'
              ? { fusion: 'dbsf' }
              : { rrf: { k: request.fusion?.rrfK ?? this.options.rrfK ?? DEFAULT_RRF_K } },
          filter,
          limit: request.topK,
          with_payload: true,
        } as never),
      );
    } else {
      response = await this.call('query', () =>
        this.client.query(this.collection, {
          query: sparse,
          using: SPARSE,
          filter,
          limit: request.topK,
          with_payload: true,
        } as never),
      );
    }
    const hits: SearchHit[] = response.points.map((point) => {
      const payload = point.payload as unknown as ChunkPayload;
      return {
        chunkId: payload.chunkId,
        docId: payload.docId,
        title: payload.title,
        text: payload.text,
        score: point.score,
      };
    });
    if (hits.length === 0 && (await countChunks(this.access, tenant)) === 0)
      return { hits: [], reason: 'empty-corpus' };
    return degradedReason ? { hits, degradedReason } : { hits };
  }

  async getChunks(tenant: string, chunkIds: string[]): Promise<Chunk[]> {
    if (chunkIds.length === 0) return [];
    await this.ensureCollection();
    const points = await this.call('retrieve', () =>
      this.client.retrieve(this.collection, {
        ids: chunkIds.map((chunkId) => pointId(tenant, chunkId)),
        with_payload: true,
      }),
    );
    const byId = new Map<string, Chunk>();
    for (const point of points) {
      const payload = point.payload as unknown as ChunkPayload | undefined;
      // Ids are derived from the tenant, but the payload check keeps isolation independent of that derivation.
      if (payload?.kind !== 'chunk' || payload.tenant !== tenant) continue;
      byId.set(payload.chunkId, {
        id: payload.chunkId,
        docId: payload.docId,
        title: payload.title,
        text: payload.text,
        position: payload.position,
      });
    }
    return chunkIds.flatMap((chunkId) => byId.get(chunkId) ?? []);
  }

  async documentHash(tenant: string, docId: string): Promise<string | undefined> {
    await this.ensureCollection();
    return (await storedHashes(this.access, tenant, [docId])).get(docId);
  }

  async stats(tenant: string): Promise<CorpusStats> {
    await this.ensureCollection();
    const [chunks, documents, corpusVersion] = await Promise.all([
      countChunks(this.access, tenant),
      countChunks(this.access, tenant, true),
      readCorpusVersion(this.access, tenant),
    ]);
    return { documents, chunks, corpusVersion };
  }

  async corpusVersion(tenant: string): Promise<number> {
    await this.ensureCollection();
    return readCorpusVersion(this.access, tenant);
  }

  async health(): Promise<HealthStatus> {
    const started = performance.now();
    try {
      const exists = await this.client.collectionExists(this.collection);
      if (!exists.exists) {
        return {
          ok: true,
          latencyMs: performance.now() - started,
          detail: `collection ${this.collection} not created yet`,
        };
      }
      const problem = layoutProblem(
        this.collection,
        await this.client.getCollection(this.collection),
        this.options.embedder,
      );
      return problem
        ? { ok: false, latencyMs: performance.now() - started, error: problem }
        : { ok: true, latencyMs: performance.now() - started, detail: `collection ${this.collection}` };
    } catch (error) {
      return {
        ok: false,
        latencyMs: performance.now() - started,
        error: `Qdrant at ${this.options.url} (QDRANT_URL) unreachable: ${describeQdrantError(error)}`,
      };
    }
  }

  /**
   * Start-up check: throws {@link QdrantLayoutError} when the collection exists with vectors this store cannot use,
   * so a worker stops naming the mismatch instead of failing every query. Qdrant being unreachable is not an
   * error here: the worker starts, /readyz says so, and queries answer from the fallback until it is back.
   */
  async verifyLayout(timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const lookup = (async () => {
      if (!(await this.client.collectionExists(this.collection)).exists) return undefined;
      return this.client.getCollection(this.collection);
    })();
    // A server that never answers must not hold start-up either; the lookup is left to fail on its own.
    const gaveUp = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
    const info = await Promise.race([lookup, gaveUp])
      .catch(() => undefined)
      .finally(() => clearTimeout(timer));
    const problem = info && layoutProblem(this.collection, info, this.options.embedder);
    if (problem) throw new QdrantLayoutError(problem);
  }

  async close(): Promise<void> {
    await this.locks.drain();
  }

  /** Creates the collection and its payload indexes on first use; idempotent across workers. */
  private ensureCollection(): Promise<void> {
    this.ready ??= (async () => {
      const { exists } = await this.call('collectionExists', () => this.client.collectionExists(this.collection));
      if (exists) {
        // Checked before the payload indexes are created: a collection another tool made is left exactly as it was.
        const problem = layoutProblem(
          this.collection,
          await this.call('getCollection', () => this.client.getCollection(this.collection)),
          this.options.embedder,
        );
        if (problem) throw new QdrantLayoutError(problem);
      } else {
        const embedder = this.options.embedder;
        try {
          await this.client.createCollection(this.collection, {
            vectors: embedder ? { [DENSE]: { size: embedder.dimensions, distance: 'Cosine' } } : {},
            sparse_vectors: { [SPARSE]: { modifier: 'idf' } },
          });
        } catch (error) {
          // Another worker may have created it between our check and our create.
          if (!(await this.client.collectionExists(this.collection)).exists)
            throw unavailable('createCollection', error, this.options.url);
        }
      }
      await this.call('createPayloadIndex', () =>
        this.client.createPayloadIndex(this.collection, {
          wait: true,
          field_name: 'tenant',
          field_schema: { type: 'keyword', is_tenant: true },
        }),
      );
      for (const field of ['docId', 'kind', 'contentHash']) {
        await this.call('createPayloadIndex', () =>
          this.client.createPayloadIndex(this.collection, { wait: true, field_name: field, field_schema: 'keyword' }),
        );
      }
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }

  private get access(): CollectionAccess {
    return {
      client: this.client,
      collection: this.collection,
      call: (operation, request) => this.call(operation, request),
    };
  }

  private exclusive<T>(tenant: string, work: () => Promise<T>): Promise<T> {
    return this.locks.run(tenant, work);
  }

  private async call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw unavailable(operation, error, this.options.url);
    }
  }
}
