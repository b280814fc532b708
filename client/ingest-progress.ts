import type { WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import type { IngestProgress } from '../contracts/ingest.js';

/** Ingestion progress as the client sees it: the workflow's counts plus the batch in flight, when one is. */
export type IngestProgressReport = IngestProgress & {
  batch?: { documents: number; chunksEmbedded: number; chunksTotal: number };
};

const INGEST_BATCH_ACTIVITIES = new Set(['ingestManifestBatch', 'ingestBatch']);

/** The embedding progress an ingestion batch last heartbeated, or undefined before its first. */
export async function batchInFlight(handle: WorkflowHandle): Promise<IngestProgressReport['batch']> {
  const description = await handle.describe();
  const pending = description.raw.pendingActivities?.find((activity) =>
    INGEST_BATCH_ACTIVITIES.has(activity.activityType?.name ?? ''),
  );
  const payload = pending?.heartbeatDetails?.payloads?.[0];
  if (!payload) return undefined;
  const details = defaultPayloadConverter.fromPayload<{ documents?: number; embedded?: number; total?: number }>(
    payload as Payload,
  );
  if (typeof details?.embedded !== 'number' || typeof details.total !== 'number') return undefined;
  return { documents: details.documents ?? 0, chunksEmbedded: details.embedded, chunksTotal: details.total };
}
