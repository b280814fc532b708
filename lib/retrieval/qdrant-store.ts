import { createHash, randomUUID } from 'node:crypto';
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
import { ErrorType, InvalidInputError, RaglineError } from '../errors.js';
import { Analyzer } from './analyzer.js';
import { validateDocument } from './embedded-store.js';
import { embedDocuments, type Embedder } from './embedder.js';
import { DEFAULT_RRF_K } from './fusion.js';
import { TenantLock } from './tenant-lock.js';

/**
 * ChunkStore on Qdrant: one collection shared by all tenants, the tenant a keyword payload indexed with
 * `is_tenant: true` and present in every filter this class builds, so no request can cross tenants.
 *
 * Each chunk point carries a sparse vector "bm25" (the analyser's terms hashed to uint32 indices, values the
 * BM25 document-side saturation; Qdrant applies idf through `modifier: 'idf'`) and, with an embedder, a dense
 * vector "dense". With both, search is hybrid through the Query API: both legs prefetched under the tenant
 * filter and fused by reciprocal rank fusion with explicit k. A tenant's corpus version is the number of vectorless
 * "version" points it has (one added per change, see {@link QdrantStore.bumpVersion}), plus the value of the
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

const SPARSE = 'bm25';
const DENSE = 'dense';
const K1 = 1.2;
const B = 0.75;
/** Same BM25F title weight as the embedded index (README.md). */
const TITLE_WEIGHT = 3;

interface ChunkPayload {
  kind: 'chunk';
  tenant: string;
  docId: string;
  chunkId: string;
  title: string;
  docTitle: string;
  text: string;
  position: number;
  contentHash: string;
}

interface MetaPayload {
  kind: 'meta';
  tenant: string;
  corpusVersion: number;
}

interface VersionPayload {
  kind: 'version';
  tenant: string;
}

/** A collection whose vectors are not the ones this store writes and searches; nothing of it is changed. */
export class QdrantLayoutError extends RaglineError {
  constructor(message: string) {
    super(ErrorType.Configuration, message);
  }
}

type Condition = { key: string; match: { value: string | number } | { any: string[] } };

const match = (key: string, value: string | number): Condition => ({ key, match: { value } });
const matchAny = (key: string, values: string[]): Condition => ({ key, match: { any: values } });

/** Point ids must be UUIDs or integers; a name-based id makes re-upserting a chunk overwrite it. */
export function pointId(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('\u0000')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** FNV-1a, 32 bits: a stable term → sparse index mapping; collisions only merge two rare terms' weights. */
export function termIndex(term: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < term.length; i++) {
    hash ^= term.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
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
      const stored = await this.storedHashes(tenant, [...new Set(docs.map((doc) => doc.docId))]);
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
          const vector: Record<string, unknown> = { [SPARSE]: this.documentSparse(chunk) };
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
      await this.bumpVersion(tenant);
      return results;
    });
  }

  async deleteDocuments(tenant: string, docIds: string[]): Promise<{ deleted: string[]; missing: string[] }> {
    await this.ensureCollection();
    return this.exclusive(tenant, async () => {
      const unique = [...new Set(docIds)];
      const stored = await this.storedHashes(tenant, unique);
      const deleted = unique.filter((docId) => stored.has(docId));
      const missing = unique.filter((docId) => !stored.has(docId));
      if (deleted.length === 0) return { deleted, missing };
      await this.call('delete', () =>
        this.client.delete(this.collection, {
          wait: true,
          filter: { must: [match('kind', 'chunk'), match('tenant', tenant), matchAny('docId', deleted)] } as never,
        }),
      );
      await this.bumpVersion(tenant);
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
    if (hits.length === 0 && (await this.countChunks(tenant)) === 0) return { hits: [], reason: 'empty-corpus' };
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
    return (await this.storedHashes(tenant, [docId])).get(docId);
  }

  async stats(tenant: string): Promise<CorpusStats> {
    await this.ensureCollection();
    const [chunks, documents, corpusVersion] = await Promise.all([
      this.countChunks(tenant),
      this.countChunks(tenant, true),
      this.readCorpusVersion(tenant),
    ]);
    return { documents, chunks, corpusVersion };
  }

  async corpusVersion(tenant: string): Promise<number> {
    await this.ensureCollection();
    return this.readCorpusVersion(tenant);
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
      const problem = this.layoutProblem(await this.client.getCollection(this.collection));
      return problem
        ? { ok: false, latencyMs: performance.now() - started, error: problem }
        : { ok: true, latencyMs: performance.now() - started, detail: `collection ${this.collection}` };
    } catch (error) {
      return {
        ok: false,
        latencyMs: performance.now() - started,
        error: `Qdrant at ${this.options.url} (QDRANT_URL) unreachable: ${describe(error)}`,
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
    const problem = info && this.layoutProblem(info);
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
        const problem = this.layoutProblem(
          await this.call('getCollection', () => this.client.getCollection(this.collection)),
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

  /** Why this collection's vectors cannot hold our points, or undefined when they can. */
  private layoutProblem(info: {
    config: { params: { vectors?: unknown; sparse_vectors?: unknown } };
  }): string | undefined {
    const { vectors, sparse_vectors: sparse } = info.config.params;
    const found: string[] = [];
    const named = (vectors ?? {}) as Record<string, unknown>;
    // An unnamed vector shows as { size, distance } at the top level instead of a map of names.
    if (typeof named.size === 'number') found.push(`an unnamed ${named.size}-dimension dense vector`);
    else for (const [name, params] of Object.entries(named)) found.push(`dense "${name}" (${describeDense(params)})`);
    for (const name of Object.keys((sparse ?? {}) as object)) found.push(`sparse "${name}"`);
    const problems: string[] = [];
    const sparseParams = (sparse as Record<string, { modifier?: string } | undefined> | undefined)?.[SPARSE];
    if (!sparseParams) problems.push(`no sparse vector "${SPARSE}"`);
    else if (sparseParams.modifier !== 'idf') problems.push(`sparse "${SPARSE}" without the idf modifier`);
    if (typeof named.size === 'number') problems.push('an unnamed dense vector');
    const embedder = this.options.embedder;
    if (embedder) {
      const dense = named[DENSE] as { size?: number } | undefined;
      if (typeof named.size !== 'number' && !dense) problems.push(`no dense vector "${DENSE}"`);
      else if (dense && dense.size !== embedder.dimensions)
        problems.push(`dense "${DENSE}" of ${dense.size} dimensions where the embedder makes ${embedder.dimensions}`);
    }
    if (problems.length === 0) return undefined;
    return (
      `Qdrant collection ${this.collection} (QDRANT_COLLECTION) has a different vector layout: ${problems.join(', ')}. ` +
      `It has ${found.length > 0 ? found.join(', ') : 'no vectors'}; ragline needs sparse "${SPARSE}" (idf)` +
      `${embedder ? ` and dense "${DENSE}" of ${embedder.dimensions} dimensions` : ''}. ` +
      'Nothing was written to it: point QDRANT_COLLECTION at another collection.'
    );
  }

  private documentSparse(chunk: Chunk): { indices: number[]; values: number[] } {
    const weights = new Map<number, number>();
    const title = this.analyzer.analyze(chunk.title);
    const body = this.analyzer.analyze(chunk.text);
    for (const term of title) weights.set(termIndex(term), (weights.get(termIndex(term)) ?? 0) + TITLE_WEIGHT);
    for (const term of body) weights.set(termIndex(term), (weights.get(termIndex(term)) ?? 0) + 1);
    const norm = 1 - B + (B * (title.length + body.length)) / (this.options.averageLength ?? 120);
    const indices = [...weights.keys()];
    return {
      indices,
      values: indices.map((index) => (weights.get(index)! * (K1 + 1)) / (weights.get(index)! + K1 * norm)),
    };
  }

  private async storedHashes(tenant: string, docIds: string[]): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    if (docIds.length === 0) return hashes;
    // Every chunk of a document carries its hash; the first chunk is enough, but a scroll cannot group by doc.
    let offset: string | number | Record<string, unknown> | null | undefined;
    do {
      const page = await this.call('scroll', () =>
        this.client.scroll(this.collection, {
          filter: {
            must: [match('kind', 'chunk'), match('tenant', tenant), matchAny('docId', docIds), match('position', 0)],
          } as never,
          with_payload: { include: ['docId', 'contentHash'] },
          limit: 1000,
          ...(offset === undefined || offset === null ? {} : { offset: offset as never }),
        }),
      );
      for (const point of page.points) {
        const payload = point.payload as { docId?: string; contentHash?: string } | null | undefined;
        if (payload?.docId && payload.contentHash) hashes.set(payload.docId, payload.contentHash);
      }
      offset = page.next_page_offset as typeof offset;
    } while (offset !== undefined && offset !== null);
    return hashes;
  }

  private async countChunks(tenant: string, firstOnly = false): Promise<number> {
    const must = [match('kind', 'chunk'), match('tenant', tenant), ...(firstOnly ? [match('position', 0)] : [])];
    const { count } = await this.call('count', () =>
      this.client.count(this.collection, { filter: { must } as never, exact: true }),
    );
    return count;
  }

  private async readCorpusVersion(tenant: string): Promise<number> {
    const [[meta], { count }] = await Promise.all([
      this.call('retrieve', () =>
        this.client.retrieve(this.collection, { ids: [pointId(tenant, '\u0000meta')], with_payload: true }),
      ),
      this.call('count', () =>
        this.client.count(this.collection, {
          filter: { must: [match('kind', 'version'), match('tenant', tenant)] } as never,
          exact: true,
        }),
      ),
    ]);
    const payload = meta?.payload as MetaPayload | undefined;
    const legacy = payload?.kind === 'meta' && payload.tenant === tenant ? payload.corpusVersion : 0;
    return legacy + count;
  }

  /**
   * One new point per change, under a fresh random id: concurrent writers in any number of processes each add
   * their own, so no step is lost (a read-increment-write of one counter point could lose one and let two corpus
   * states share a version, serving cached answers across the change). Counting needs no Redis and no lock.
   */
  private async bumpVersion(tenant: string): Promise<void> {
    const payload: VersionPayload = { kind: 'version', tenant };
    await this.call('upsert', () =>
      this.client.upsert(this.collection, {
        wait: true,
        points: [{ id: pointId(tenant, '\u0000version', randomUUID()), vector: {}, payload: { ...payload } }] as never,
      }),
    );
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

/** Query side: each distinct term once; Qdrant multiplies by idf. */
function querySparse(terms: string[]): { indices: number[]; values: number[] } {
  const weights = new Map<number, number>();
  for (const term of terms) weights.set(termIndex(term), 1);
  return { indices: [...weights.keys()], values: [...weights.values()] };
}

function describeDense(params: unknown): string {
  const { size, distance } = (params ?? {}) as { size?: number; distance?: string };
  return `${size ?? '?'} dimensions, ${distance ?? '?'}`;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const data = (error as { data?: { status?: { error?: string } } }).data;
    return data?.status?.error ? `${error.message}: ${data.status.error}` : error.message;
  }
  return String(error);
}

function unavailable(operation: string, error: unknown, url: string): RaglineError {
  if (error instanceof RaglineError) return error;
  const status = (error as { status?: number }).status;
  // 4xx other than 408/429 mean our request or configuration is wrong: retrying sends the same thing.
  const type =
    status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429
      ? ErrorType.Configuration
      : ErrorType.Unavailable;
  // No status means no answer at all: say which setting points at the server that did not answer.
  const where = status === undefined ? ` (Qdrant at ${url}, QDRANT_URL)` : '';
  return new RaglineError(type, `Qdrant ${operation} failed${where}: ${describe(error)}`, { cause: error });
}
