import { randomUUID } from 'node:crypto';
import type { QdrantClient } from '@qdrant/js-client-rest';
import { match, matchAny, pointId, type MetaPayload, type VersionPayload } from './points.js';

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
