import { randomUUID } from 'node:crypto';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { DENSE, match, matchAny, pointId, type MetaPayload, type VersionPayload } from './points.js';

/** The reads and writes of a tenant's bookkeeping in one collection: content hashes, chunk counts, corpus version. */

/** Runs one Qdrant request, turning its failure into a typed RaglineError named after the operation. */
export type QdrantCall = <T>(operation: string, request: () => Promise<T>) => Promise<T>;

/** The collection a tenant's points are in, and how to call Qdrant about it. */
export interface CollectionAccess {
  client: QdrantClient;
  collection: string;
  call: QdrantCall;
}

export async function storedHashes(
  access: CollectionAccess,
  tenant: string,
  docIds: string[],
): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  if (docIds.length === 0) return hashes;
  // Every chunk of a document carries its hash; the first chunk is enough, but a scroll cannot group by doc.
  let offset: string | number | Record<string, unknown> | null | undefined;
  do {
    const page = await access.call('scroll', () =>
      access.client.scroll(access.collection, {
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

export async function countChunks(access: CollectionAccess, tenant: string, firstOnly = false): Promise<number> {
  const must = [match('kind', 'chunk'), match('tenant', tenant), ...(firstOnly ? [match('position', 0)] : [])];
  const { count } = await access.call('count', () =>
    access.client.count(access.collection, { filter: { must } as never, exact: true }),
  );
  return count;
}

export async function readCorpusVersion(access: CollectionAccess, tenant: string): Promise<number> {
  const [[meta], { count }] = await Promise.all([
    access.call('retrieve', () =>
      access.client.retrieve(access.collection, { ids: [pointId(tenant, '\u0000meta')], with_payload: true }),
    ),
    access.call('count', () =>
      access.client.count(access.collection, {
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
export async function bumpVersion(access: CollectionAccess, tenant: string): Promise<void> {
  const payload: VersionPayload = { kind: 'version', tenant };
  await access.call('upsert', () =>
    access.client.upsert(access.collection, {
      wait: true,
      points: [{ id: pointId(tenant, '\u0000version', randomUUID()), vector: {}, payload: { ...payload } }] as never,
    }),
  );
}

type Offset = string | number | Record<string, unknown> | null | undefined;

/** Every point matching `filter`, page by page. */
export async function scrollAll(
  access: CollectionAccess,
  filter: Record<string, unknown>,
  request: { with_payload: unknown; with_vector?: unknown },
): Promise<{ id: string | number; payload?: Record<string, unknown> | null; vector?: unknown }[]> {
  const points: { id: string | number; payload?: Record<string, unknown> | null; vector?: unknown }[] = [];
  let offset: Offset;
  do {
    const page = await access.call('scroll', () =>
      access.client.scroll(access.collection, {
        filter: filter as never,
        ...(request as object),
        limit: 1000,
        ...(offset === undefined || offset === null ? {} : { offset: offset as never }),
      }),
    );
    points.push(...(page.points as typeof points));
    offset = page.next_page_offset as Offset;
  } while (offset !== undefined && offset !== null);
  return points;
}

/** Chunks per document and content hash: `docId → contentHash → chunks`. */
export type DocumentVersions = Map<string, Map<string, number>>;

/**
 * The tenant's documents in the collection, by the chunk points of each version; with `denseOnly`, only the points
 * that have a dense vector (what a staging collection has finished).
 */
export async function documentVersions(
  access: CollectionAccess,
  tenant: string,
  denseOnly = false,
): Promise<DocumentVersions> {
  const must: unknown[] = [match('kind', 'chunk'), match('tenant', tenant)];
  if (denseOnly) must.push({ has_vector: DENSE });
  const points = await scrollAll(access, { must }, { with_payload: { include: ['docId', 'contentHash'] } });
  const versions: DocumentVersions = new Map();
  for (const point of points) {
    const { docId, contentHash } = (point.payload ?? {}) as { docId?: string; contentHash?: string };
    if (!docId || !contentHash) continue;
    const byHash = versions.get(docId) ?? new Map<string, number>();
    byHash.set(contentHash, (byHash.get(contentHash) ?? 0) + 1);
    versions.set(docId, byHash);
  }
  return versions;
}
