import { createHash } from 'node:crypto';
import type { QdrantClient } from '@qdrant/js-client-rest';
import type { Embedder } from '../embedder.js';
import { denseUsable, embeddingMetadata, layoutProblem, QdrantLayoutError, unavailable } from './layout.js';
import { DENSE, SPARSE } from './points.js';
import type { CollectionAccess, QdrantCall } from './tenant-points.js';

/**
 * Which collection holds a tenant's points. All tenants share QDRANT_COLLECTION until one is re-embedded: a dense
 * vector's size is fixed per collection, so a tenant re-embedded with another model moves to a collection of its own
 * behind the alias `<QDRANT_COLLECTION>__tenant_<sha256(tenant)[:16]>`, swapped atomically at each switch.
 */

/** Where a tenant's points are, and whether the configured embedder can search their dense vectors. */
export interface Route {
  /** The alias when the tenant has one, else the shared collection: what every request names. */
  collection: string;
  /** The tenant has a collection of its own (behind its alias). */
  own: boolean;
  dense: boolean;
}

const hash = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);

export class TenantCollections {
  private shared: Promise<void> | undefined;
  private readonly routes = new Map<string, { route: Route; at: number }>();

  constructor(
    private readonly client: QdrantClient,
    /** QDRANT_COLLECTION, shared by every tenant not re-embedded. */
    readonly base: string,
    private readonly embedder: Embedder | undefined,
    private readonly call: QdrantCall,
    private readonly url: string,
    /** How long a read trusts a tenant's route; writes and re-embedding always look it up. */
    private readonly routeCacheMs: number,
  ) {}

  /** The names under which a tenant's own collections live: its alias, and its collections `<alias>__<hash>`. */
  alias(tenant: string): string {
    return `${this.base}__tenant_${hash(tenant, 16)}`;
  }

  /**
   * The staging collection for re-embedding the tenant, now in `live` (a real collection name), with the
   * configured embedder: the same name every time for the same run, so a resumed run finds what it staged.
   */
  staging(tenant: string, live: string, identity: string, dimensions: number): string {
    return `${this.alias(tenant)}__${hash(`${identity}\u0000${dimensions}\u0000${live}`, 16)}`;
  }

  /** The tenant's route: cached for reads (`fresh` false) for routeCacheMs, looked up for writes. */
  async route(tenant: string, fresh: boolean): Promise<Route> {
    const cached = this.routes.get(tenant);
    if (!fresh && cached && performance.now() - cached.at < this.routeCacheMs) return cached.route;
    await this.ensureShared();
    const alias = this.alias(tenant);
    const { exists } = await this.call('collectionExists', () => this.client.collectionExists(alias));
    const collection = exists ? alias : this.base;
    const info = await this.call('getCollection', () => this.client.getCollection(collection));
    const route: Route = { collection, own: exists, dense: denseUsable(info, this.embedder) };
    this.routes.set(tenant, { route, at: performance.now() });
    return route;
  }

  /** After a switch: this worker's next request for the tenant looks its route up again. */
  forget(tenant: string): void {
    this.routes.delete(tenant);
  }

  /** The collection an alias points at, or undefined when there is no such alias. */
  async behind(alias: string): Promise<string | undefined> {
    const { aliases } = await this.call('getAliases', () => this.client.getAliases());
    return aliases.find((entry) => entry.alias_name === alias)?.collection_name;
  }

  access(collection: string): CollectionAccess {
    return { client: this.client, collection, call: this.call };
  }

  /**
   * Creates a collection with ragline's vectors, the embedding it is for recorded in its metadata, and its payload
   * indexes; idempotent across workers.
   */
  async create(name: string, embedder: Embedder | undefined): Promise<void> {
    const { exists } = await this.call('collectionExists', () => this.client.collectionExists(name));
    if (!exists) {
      try {
        // Through the generated API: the client's createCollection helper (1.18) drops `metadata`.
        await this.client.api().createCollection({
          collection_name: name,
          vectors: embedder ? { [DENSE]: { size: embedder.dimensions, distance: 'Cosine' } } : {},
          sparse_vectors: { [SPARSE]: { modifier: 'idf' } },
          metadata: embeddingMetadata(embedder),
        });
      } catch (error) {
        // Another worker may have created it between our check and our create.
        if (!(await this.client.collectionExists(name)).exists) throw unavailable('createCollection', error, this.url);
      }
    }
    await this.indexPayload(name);
  }

  /** Creates the shared collection and its payload indexes on first use; idempotent across workers. */
  ensureShared(): Promise<void> {
    this.shared ??= (async () => {
      const { exists } = await this.call('collectionExists', () => this.client.collectionExists(this.base));
      if (!exists) return this.create(this.base, this.embedder);
      // Checked before the payload indexes are created: a collection another tool made is left exactly as it was.
      const problem = layoutProblem(
        this.base,
        await this.call('getCollection', () => this.client.getCollection(this.base)),
        this.embedder,
      );
      if (problem) throw new QdrantLayoutError(problem);
      await this.indexPayload(this.base);
    })().catch((error: unknown) => {
      this.shared = undefined;
      throw error;
    });
    return this.shared;
  }

  private async indexPayload(name: string): Promise<void> {
    await this.call('createPayloadIndex', () =>
      this.client.createPayloadIndex(name, {
        wait: true,
        field_name: 'tenant',
        field_schema: { type: 'keyword', is_tenant: true },
      }),
    );
    for (const field of ['docId', 'kind', 'contentHash']) {
      await this.call('createPayloadIndex', () =>
        this.client.createPayloadIndex(name, { wait: true, field_name: field, field_schema: 'keyword' }),
      );
    }
  }
}
