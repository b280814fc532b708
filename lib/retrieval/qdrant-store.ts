import { QdrantClient } from '@qdrant/js-client-rest';
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
import { InvalidInputError } from '../errors.js';
import { Analyzer } from './analyzer.js';
import { validateDocument } from './embedded-store.js';
import { embedDocuments, type Embedder } from './embedder.js';
import { TenantCollections } from './qdrant/collections.js';
import { describeQdrantError, layoutProblem, QdrantLayoutError, unavailable } from './qdrant/layout.js';
import { DENSE, documentSparse, match, matchAny, pointId, SPARSE, type ChunkPayload } from './qdrant/points.js';
import { QdrantReembedder } from './qdrant/reembedder.js';
import { searchTenant } from './qdrant/search.js';
import {
  bumpVersion,
  countChunks,
  readCorpusVersion,
  storedHashes,
  type CollectionAccess,
} from './qdrant/tenant-points.js';
import type { EmbeddingStatus, ReembeddableStore, StageOptions, StageResult, SwitchResult } from './reembedding.js';
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
 * single "meta" point that collections written before that scheme carry (and a re-embedded collection starts from).
 *
 * A tenant re-embedded with another model lives in a collection of its own behind an alias (qdrant/collections.ts,
 * qdrant/reembedder.ts); every request goes to the tenant's route, the alias when it exists, else the shared one.
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
  /**
   * How long a search trusts which collection a tenant is in before looking again; writes always look. After another
   * worker's switch, this worker's searches reach the new collection within this time. @default 2000
   */
  routeCacheMs?: number;
}

export interface QdrantStoreDeps {
  client?: QdrantClient;
  analyzer?: Analyzer;
}

export class QdrantStore implements ChunkStore, ReembeddableStore {
  readonly kind = 'qdrant';
  private readonly client: QdrantClient;
  private readonly analyzer: Analyzer;
  private readonly collection: string;
  private readonly locks = new TenantLock();
  private readonly collections: TenantCollections;
  private readonly reembedder: QdrantReembedder;

  constructor(
    private readonly options: QdrantStoreOptions,
    deps: QdrantStoreDeps = {},
  ) {
    this.collection = options.collection;
    this.client =
      deps.client ?? new QdrantClient({ url: options.url, apiKey: options.apiKey, checkCompatibility: false });
    this.analyzer = deps.analyzer ?? new Analyzer();
    const call = <T>(operation: string, request: () => Promise<T>) => this.call(operation, request);
    this.collections = new TenantCollections(
      this.client,
      this.collection,
      options.embedder,
      call,
      options.url,
      options.routeCacheMs ?? 2000,
    );
    this.reembedder = new QdrantReembedder(
      this.collections,
      options.embedder,
      (tenant, work) => this.exclusive(tenant, work),
      options.batchSize ?? 256,
    );
  }

  async upsertDocuments(tenant: string, docs: DocumentChunks[], options: UpsertOptions = {}): Promise<UpsertResult[]> {
    const problems = docs.flatMap((doc) => validateDocument(doc) ?? []);
    if (problems.length > 0) throw new InvalidInputError(`rejected documents: ${problems.join('; ')}`);
    return this.exclusive(tenant, async () => {
      const route = await this.collections.route(tenant, true);
      const access = this.collections.access(route.collection);
      const stored = await storedHashes(access, tenant, [...new Set(docs.map((doc) => doc.docId))]);
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
      // Every vector first, then the writes: an embedding failure leaves the collection as it was. A collection whose
      // vectors came from another embedder gets none (the tenant awaits re-embedding, which embeds these too).
      const embedder = route.dense ? this.options.embedder : undefined;
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
        await this.call('upsert', () => this.client.upsert(route.collection, { wait: true, points: points as never }));
      }
      // New points are written first and the stale ones removed after, so a document is never absent mid-update.
      await this.call('delete', () =>
        this.client.delete(route.collection, {
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
      await bumpVersion(access, tenant);
      return results;
    });
  }

  async deleteDocuments(tenant: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    return this.exclusive(tenant, async () => {
      const unique = [...new Set(docIds)];
      const access = await this.access(tenant, true);
      const stored = await storedHashes(access, tenant, unique);
      const deleted = unique.filter((docId) => stored.has(docId));
      const missing = unique.filter((docId) => !stored.has(docId));
      if (deleted.length === 0) return { deleted, missing };
      await this.call('delete', () =>
        this.client.delete(access.collection, {
          wait: true,
          filter: { must: [match('kind', 'chunk'), match('tenant', tenant), matchAny('docId', deleted)] } as never,
        }),
      );
      await bumpVersion(access, tenant);
      return { deleted, missing };
    });
  }

  async search(tenant: string, request: SearchRequest): Promise<SearchResponse> {
    if (this.analyzer.analyze(request.query).length === 0) return { hits: [], reason: 'no-terms' };
    const route = await this.collections.route(tenant, false);
    return searchTenant(
      {
        client: this.client,
        call: (operation, run) => this.call(operation, run),
        analyzer: this.analyzer,
        embedder: this.options.embedder,
        rrfK: this.options.rrfK,
        fusion: this.options.fusion,
        prefetchFactor: this.options.prefetchFactor ?? 4,
      },
      route,
      tenant,
      request,
    );
  }

  async getChunks(tenant: string, chunkIds: string[]): Promise<Chunk[]> {
    if (chunkIds.length === 0) return [];
    const { collection } = await this.access(tenant);
    const points = await this.call('retrieve', () =>
      this.client.retrieve(collection, {
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
    return (await storedHashes(await this.access(tenant), tenant, [docId])).get(docId);
  }

  async stats(tenant: string): Promise<CorpusStats> {
    const access = await this.access(tenant);
    const [chunks, documents, corpusVersion] = await Promise.all([
      countChunks(access, tenant),
      countChunks(access, tenant, true),
      readCorpusVersion(access, tenant),
    ]);
    return { documents, chunks, corpusVersion };
  }

  async corpusVersion(tenant: string): Promise<number> {
    return readCorpusVersion(await this.access(tenant), tenant);
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

  embeddingStatus(tenant: string): Promise<EmbeddingStatus> {
    return this.reembedder.embeddingStatus(tenant);
  }

  tenantsNeedingReembedding(): Promise<string[]> {
    return this.reembedder.tenantsNeedingReembedding();
  }

  beginReembedding(tenant: string): Promise<EmbeddingStatus> {
    return this.reembedder.beginReembedding(tenant);
  }

  stageEmbeddings(tenant: string, options: StageOptions): Promise<StageResult> {
    return this.reembedder.stageEmbeddings(tenant, options);
  }

  switchEmbeddings(tenant: string): Promise<SwitchResult> {
    return this.reembedder.switchEmbeddings(tenant);
  }

  /** The tenant's collection: looked up afresh for writes (`fresh`), from a short-lived cache for reads. */
  private async access(tenant: string, fresh = false): Promise<CollectionAccess> {
    return this.collections.access((await this.collections.route(tenant, fresh)).collection);
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
