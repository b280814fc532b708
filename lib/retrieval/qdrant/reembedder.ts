import type { DocumentChunks } from '../../domain.js';
import { embedderIdentity, embedDocuments, type Embedder } from '../embedder.js';
import {
  NoEmbedderError,
  type EmbeddingStatus,
  type Exclusive,
  type ReembeddableStore,
  type StageOptions,
  type StageResult,
  type SwitchResult,
} from '../reembedding.js';
import type { TenantCollections } from './collections.js';
import { recordedEmbedding } from './layout.js';
import { DENSE, match, matchAny, pointId, SPARSE, type ChunkPayload, type MetaPayload } from './points.js';
import { countChunks, documentVersions, readCorpusVersion, scrollAll, type DocumentVersions } from './tenant-points.js';

/**
 * QdrantStore's re-embedding (ReembeddableStore). A tenant is re-embedded into a staging collection of its own
 * (collections.ts names it), copied document by document with its payload and sparse vector plus the configured
 * embedder's dense vector, while its live collection keeps answering (sparse only, flagged `embedding-mismatch`) and
 * keeps taking ingestion (without dense vectors). What is staged is what the staging collection holds with a dense
 * vector, so a resumed run embeds only what is missing. The switch swaps the tenant's alias to the staging
 * collection in one atomic call, then removes the tenant's old points.
 *
 * Known limit: ingestion on another worker in the instant between the switch's final check and the alias swap can
 * land in the old collection and be lost with it; re-ingesting the document restores it.
 */

/** A tenant's live documents against its staging collection. */
interface Plan {
  /** What requests name (alias or shared collection) and the real collection behind it. */
  live: { collection: string; real: string; own: boolean; dense: boolean; identity?: string };
  staging: string;
  stagingExists: boolean;
  /** `docId → [contentHash, chunks]`, for documents with one version live. */
  docs: Map<string, [string, number]>;
  staged: DocumentVersions;
  chunksTotal: number;
  chunksStaged: number;
  /** Live documents with no complete staged copy, in docId order. */
  pending: string[];
  needed: boolean;
}

export class QdrantReembedder implements ReembeddableStore {
  constructor(
    private readonly collections: TenantCollections,
    private readonly embedder: Embedder | undefined,
    private readonly exclusive: Exclusive,
    private readonly batchSize: number,
  ) {}

  async embeddingStatus(tenant: string): Promise<EmbeddingStatus> {
    const plan = await this.plan(tenant);
    const documents = await countChunks(this.collections.access(plan.live.collection), tenant, true);
    return {
      tenant,
      ...(plan.live.identity ? { live: plan.live.identity } : {}),
      ...(this.embedder ? { configured: embedderIdentity(this.embedder) } : {}),
      documents,
      chunks: plan.chunksTotal,
      needed: plan.needed,
      ...(plan.stagingExists && this.embedder
        ? { staging: { identity: embedderIdentity(this.embedder), chunksStaged: plan.chunksStaged } }
        : {}),
    };
  }

  /** Tenants of the shared collection and of every tenant alias (facets on `tenant`) that need re-embedding. */
  async tenantsNeedingReembedding(): Promise<string[]> {
    if (!this.embedder) return [];
    await this.collections.ensureShared();
    const prefix = `${this.collections.base}__tenant_`;
    const { aliases } = await this.call('getAliases', () => this.client.getAliases());
    const tenants = new Set<string>();
    for (const collection of [
      this.collections.base,
      ...aliases.map((a) => a.alias_name).filter((a) => a.startsWith(prefix)),
    ]) {
      const { hits } = await this.call('facet', () =>
        this.client.facet(collection, {
          key: 'tenant',
          filter: { must: [match('kind', 'chunk')] } as never,
          limit: 100_000,
          exact: true,
        }),
      );
      for (const hit of hits) if (typeof hit.value === 'string') tenants.add(hit.value);
    }
    const needing: string[] = [];
    for (const tenant of [...tenants].sort()) if ((await this.plan(tenant)).needed) needing.push(tenant);
    return needing;
  }

  async beginReembedding(tenant: string): Promise<EmbeddingStatus> {
    const embedder = this.requireEmbedder(tenant);
    await this.exclusive(tenant, async () => {
      const plan = await this.plan(tenant);
      await this.dropLeftovers(tenant, plan);
      if (plan.needed && !plan.stagingExists) await this.collections.create(plan.staging, embedder);
    });
    return this.embeddingStatus(tenant);
  }

  /**
   * Embeds the next whole documents that have no complete staged copy and writes them to the staging collection,
   * outside the tenant's lock (ingestion goes on meanwhile: a document changed since is staged again by a later
   * batch, since its staged hash no longer matches).
   */
  async stageEmbeddings(tenant: string, options: StageOptions): Promise<StageResult> {
    const embedder = this.requireEmbedder(tenant);
    const maxChunks = Math.max(1, Math.floor(options.maxChunks));
    const plan = await this.plan(tenant);
    const result = (documents: number, chunks: number): StageResult => ({
      documents,
      chunks,
      chunksStaged: plan.chunksStaged + chunks,
      chunksTotal: plan.chunksTotal,
    });
    if (!plan.needed) return result(0, 0);
    if (!plan.stagingExists) await this.collections.create(plan.staging, embedder);
    const batch: string[] = [];
    let planned = 0;
    for (const docId of plan.pending) {
      const chunks = plan.docs.get(docId)![1];
      if (batch.length > 0 && planned + chunks > maxChunks) break;
      batch.push(docId);
      planned += chunks;
    }
    if (batch.length === 0) return result(0, 0);
    const live = this.collections.access(plan.live.collection);
    const points = await scrollAll(
      live,
      { must: [match('kind', 'chunk'), match('tenant', tenant), matchAny('docId', batch)] },
      { with_payload: true, with_vector: [SPARSE] },
    );
    const byDoc = new Map<string, { payload: ChunkPayload; sparse: unknown }[]>();
    for (const point of points) {
      const payload = point.payload as unknown as ChunkPayload;
      // Only the version the plan saw: a newer one written meanwhile is staged by a later batch.
      if (payload.contentHash !== plan.docs.get(payload.docId)?.[0]) continue;
      const sparse = (point.vector as Record<string, unknown> | undefined)?.[SPARSE];
      byDoc.set(payload.docId, [...(byDoc.get(payload.docId) ?? []), { payload, sparse }]);
    }
    const docs: DocumentChunks[] = [...byDoc.values()].map((chunks) => {
      chunks.sort((a, b) => a.payload.position - b.payload.position);
      const first = chunks[0]!.payload;
      return {
        docId: first.docId,
        title: first.docTitle,
        contentHash: first.contentHash,
        chunks: chunks.map(({ payload }) => ({
          id: payload.chunkId,
          docId: payload.docId,
          title: payload.title,
          text: payload.text,
          position: payload.position,
        })),
      };
    });
    const copies = [...byDoc.values()].flat();
    const vectors = await embedDocuments(embedder, docs);
    const staging = this.collections.access(plan.staging);
    for (let start = 0; start < copies.length; start += this.batchSize) {
      const part = copies.slice(start, start + this.batchSize).map(({ payload, sparse }, i) => ({
        id: pointId(tenant, payload.chunkId),
        vector: { [SPARSE]: sparse, [DENSE]: vectors[start + i]! },
        payload: { ...payload },
      }));
      await this.call('upsert', () => this.client.upsert(plan.staging, { wait: true, points: part as never }));
    }
    // Chunks of an older staged version that the new one does not overwrite.
    await this.deleteStale(
      staging.collection,
      tenant,
      docs.map((doc) => [doc.docId, doc.contentHash]),
    );
    return result(docs.length, copies.length);
  }

  /**
   * The one switch, under the tenant's lock: refuses while a live document has no complete staged copy; removes
   * staged documents no longer live; carries the corpus version over (one step up: rankings change); swaps the
   * tenant's alias to the staging collection atomically; then drops the tenant's old points.
   */
  async switchEmbeddings(tenant: string): Promise<SwitchResult> {
    const embedder = this.requireEmbedder(tenant);
    const identity = embedderIdentity(embedder);
    return this.exclusive(tenant, async () => {
      const plan = await this.plan(tenant);
      const live = this.collections.access(plan.live.collection);
      if (!plan.needed) {
        await this.dropLeftovers(tenant, plan, true);
        return { switched: true, chunksRemaining: 0, identity, corpusVersion: await readCorpusVersion(live, tenant) };
      }
      if (!plan.stagingExists) await this.collections.create(plan.staging, embedder);
      const remaining = plan.chunksTotal - plan.chunksStaged;
      if (remaining > 0) return { switched: false, chunksRemaining: remaining, identity, corpusVersion: 0 };
      const gone = [...plan.staged.keys()].filter((docId) => !plan.docs.has(docId));
      if (gone.length > 0) {
        await this.call('delete', () =>
          this.client.delete(plan.staging, {
            wait: true,
            filter: { must: [match('tenant', tenant), matchAny('docId', gone)] } as never,
          }),
        );
      }
      await this.deleteStale(
        plan.staging,
        tenant,
        [...plan.docs].map(([docId, [hash]]) => [docId, hash]),
      );
      const corpusVersion = (await readCorpusVersion(live, tenant)) + 1;
      const meta: MetaPayload = { kind: 'meta', tenant, corpusVersion };
      await this.call('upsert', () =>
        this.client.upsert(plan.staging, {
          wait: true,
          points: [{ id: pointId(tenant, '\u0000meta'), vector: {}, payload: { ...meta } }] as never,
        }),
      );
      const alias = this.collections.alias(tenant);
      await this.call('updateCollectionAliases', () =>
        this.client.updateCollectionAliases({
          actions: [
            ...(plan.live.own ? [{ delete_alias: { alias_name: alias } }] : []),
            { create_alias: { collection_name: plan.staging, alias_name: alias } },
          ],
        }),
      );
      this.collections.forget(tenant);
      if (plan.live.own) await this.call('deleteCollection', () => this.client.deleteCollection(plan.live.real));
      await this.dropLeftovers(tenant, { ...plan, live: { ...plan.live, own: true, real: plan.staging } });
      return { switched: true, chunksRemaining: 0, identity, corpusVersion };
    });
  }

  /** Where the tenant stands: its live documents, what its staging collection holds, whether it needs re-embedding. */
  private async plan(tenant: string): Promise<Plan> {
    const route = await this.collections.route(tenant, true);
    const real = route.own ? ((await this.collections.behind(route.collection)) ?? route.collection) : route.collection;
    const info = await this.call('getCollection', () => this.client.getCollection(route.collection));
    const identity = recordedEmbedding(info)?.identity ?? undefined;
    const live = {
      collection: route.collection,
      real,
      own: route.own,
      dense: route.dense,
      ...(identity ? { identity } : {}),
    };
    const embedder = this.embedder;
    const staging = embedder
      ? this.collections.staging(tenant, real, embedderIdentity(embedder), embedder.dimensions)
      : '';
    const liveVersions = await documentVersions(this.collections.access(route.collection), tenant);
    const stagingExists =
      staging !== '' && (await this.call('collectionExists', () => this.client.collectionExists(staging))).exists;
    const staged = stagingExists ? await documentVersions(this.collections.access(staging), tenant, true) : new Map();
    const docs = new Map<string, [string, number]>();
    let chunksTotal = 0;
    let chunksStaged = 0;
    const pending: string[] = [];
    for (const [docId, byHash] of [...liveVersions].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      for (const chunks of byHash.values()) chunksTotal += chunks;
      // Two versions live: an upsert is between its write and its delete; it counts as pending until it settles.
      const [hash, chunks] = [...byHash][0]!;
      if (byHash.size === 1) docs.set(docId, [hash, chunks]);
      if (byHash.size === 1 && staged.get(docId)?.get(hash) === chunks) chunksStaged += chunks;
      else if (byHash.size === 1) pending.push(docId);
    }
    let needed = false;
    if (embedder && chunksTotal > 0) {
      needed = !route.dense;
      if (!needed) {
        const { count } = await this.call('count', () =>
          this.client.count(route.collection, {
            filter: { must: [match('kind', 'chunk'), match('tenant', tenant), { has_vector: DENSE }] } as never,
            exact: true,
          }),
        );
        needed = count < chunksTotal;
      }
    }
    return { live, staging, stagingExists, docs, staged, chunksTotal, chunksStaged, pending, needed };
  }

  /** Removes staged chunks of each document whose content hash is not the given one. */
  private async deleteStale(collection: string, tenant: string, docs: [string, string][]): Promise<void> {
    for (let start = 0; start < docs.length; start += this.batchSize) {
      const part = docs.slice(start, start + this.batchSize);
      await this.call('delete', () =>
        this.client.delete(collection, {
          wait: true,
          filter: {
            must: [match('kind', 'chunk'), match('tenant', tenant)],
            should: part.map(([docId, hash]) => ({
              must: [match('docId', docId)],
              must_not: [match('contentHash', hash)],
            })),
          } as never,
        }),
      );
    }
  }

  /**
   * What a crash after a swap (or an abandoned run) left: the tenant's points in the shared collection once it has
   * its own, and collections under its prefix other than the live one and (unless `all`) the current staging one.
   */
  private async dropLeftovers(tenant: string, plan: Pick<Plan, 'live' | 'staging'>, all = false): Promise<void> {
    if (plan.live.own) {
      await this.call('delete', () =>
        this.client.delete(this.collections.base, { wait: true, filter: { must: [match('tenant', tenant)] } as never }),
      );
    }
    const prefix = `${this.collections.alias(tenant)}__`;
    const { collections } = await this.call('getCollections', () => this.client.getCollections());
    for (const { name } of collections) {
      if (!name.startsWith(prefix) || name === plan.live.real || (!all && name === plan.staging)) continue;
      await this.call('deleteCollection', () => this.client.deleteCollection(name));
    }
  }

  private requireEmbedder(tenant: string): Embedder {
    if (!this.embedder) throw new NoEmbedderError(tenant);
    return this.embedder;
  }

  private get client() {
    return this.collections.access(this.collections.base).client;
  }

  private call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    return this.collections.access(this.collections.base).call(operation, request);
  }
}
