/**
 * The Temporal contract of background re-embedding: input, progress, result, the progress query, the workflow id and
 * the input checks. No runtime dependencies beyond the workflow SDK's `defineQuery` and the tenant rule, so clients,
 * activities and workers import it alike.
 */
import { defineQuery } from '@temporalio/workflow';
import { tenantProblem, tenantScopedId } from '../lib/tenant.js';

/** Chunks embedded per batch activity when the input does not say. @default 256 */
export const DEFAULT_REINDEX_BATCH_CHUNKS = 256;
export const MAX_REINDEX_BATCH_CHUNKS = 10_000;
/** A batch that stops heartbeating this long is retried elsewhere (a killed worker). @default 30 */
export const DEFAULT_REINDEX_HEARTBEAT_SECONDS = 30;

export interface ReindexEmbeddingsInput {
  tenant?: string;
  /** Chunks per batch activity (1–10000). @default 256 */
  batchChunks?: number;
  /** Seconds without a heartbeat before a batch is retried on another worker (1–600). @default 30 */
  heartbeatTimeoutSeconds?: number;
  /** Batches before the workflow continues as new (sooner if Temporal suggests it). @default 500 */
  batchesPerRun?: number;
  /** Set by the workflow itself when it continues as new. */
  resume?: { progress: ReindexProgress };
}

export type ReindexPhase = 'starting' | 'embedding' | 'switching' | 'done' | 'not-needed';

export interface ReindexProgress {
  tenant: string;
  phase: ReindexPhase;
  /** Identity of the vectors queries use until the switch; absent when the tenant had none. */
  from?: string;
  /** Identity of the configured embedder the new vectors come from. */
  to?: string;
  /** Live chunks with a staged new vector (ingestion during the reindex stages its own). */
  chunksDone: number;
  /** Live chunks of the tenant (grows when documents are ingested meanwhile). */
  chunksTotal: number;
  /** Chunks this reindex embedded itself, for the rate the ETA is computed from. */
  chunksEmbedded: number;
  batches: number;
  /** Workflow time, ISO 8601. */
  startedAt: string;
  updatedAt: string;
  /** Seconds left at the rate since `startedAt`, as of `updatedAt`; absent until a batch has completed. */
  etaSeconds?: number;
  /** The tenant's corpus version after the switch. */
  corpusVersion?: number;
  /** Runs of the workflow so far (it continues as new every few hundred batches). */
  runs: number;
}

export type ReindexEmbeddingsResult = ReindexProgress & { switched: boolean };

/** Progress of a reindex; it takes no arguments and refuses any (a query never fails the workflow). */
export const getReindexProgressQuery = defineQuery<ReindexProgress, []>('getReindexProgress');

/** One reindex per tenant: the id is what makes "ensure it runs" idempotent across workers and CLIs. */
export function reindexWorkflowId(tenant: string): string {
  return tenantScopedId('reindex-embeddings', tenant);
}

/** Why a reindex input is refused, or undefined when it is valid. */
export function reindexInputProblem(input: ReindexEmbeddingsInput, tenant: string): string | undefined {
  const problem = tenantProblem(tenant);
  if (problem) return problem;
  const batch = input.batchChunks;
  if (batch !== undefined && (!Number.isInteger(batch) || batch < 1 || batch > MAX_REINDEX_BATCH_CHUNKS)) {
    return `batchChunks must be an integer from 1 to ${MAX_REINDEX_BATCH_CHUNKS}, not ${String(batch)}`;
  }
  const heartbeat = input.heartbeatTimeoutSeconds;
  if (heartbeat !== undefined && (!Number.isInteger(heartbeat) || heartbeat < 1 || heartbeat > 600)) {
    return `heartbeatTimeoutSeconds must be an integer from 1 to 600, not ${String(heartbeat)}`;
  }
  const perRun = input.batchesPerRun;
  if (perRun !== undefined && (!Number.isInteger(perRun) || perRun < 1)) {
    return `batchesPerRun must be a positive integer, not ${String(perRun)}`;
  }
  return undefined;
}

/** Seconds left at the rate observed since the reindex started, or undefined before there is a rate. */
export function reindexEtaSeconds(progress: ReindexProgress, nowMs: number): number | undefined {
  const elapsedMs = nowMs - Date.parse(progress.startedAt);
  if (progress.chunksEmbedded <= 0 || elapsedMs <= 0) return undefined;
  const remaining = Math.max(0, progress.chunksTotal - progress.chunksDone);
  return Math.round((remaining * elapsedMs) / progress.chunksEmbedded / 1000);
}
