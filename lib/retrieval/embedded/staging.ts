import type { TenantIndex } from '../lexical-index.js';

/**
 * The in-memory side of a re-embedding: which live documents have staged vectors of their current version and
 * which are still pending. The vectors themselves stay in the staging file (staging-file.ts) until the switch.
 */

export interface Staging {
  identity: string;
  dimensions: number;
  /** The latest staged version of each document: its content hash and chunk count (the vectors stay on disk). */
  staged: Map<string, { contentHash: string; chunks: number }>;
  /** Live documents with no staged vectors of their current version, and their chunk counts, in batch order. */
  pending: Map<string, number>;
  pendingChunks: number;
  /** A write failed part-way: the file may end in a torn record, so the next record starts on a new line. */
  suspect: boolean;
}

/** A staging area over `index`, its pending documents computed from what is already staged. */
export function createStaging(
  index: TenantIndex,
  identity: string,
  dimensions: number,
  staged: Staging['staged'],
  suspect: boolean,
): Staging {
  const staging: Staging = { identity, dimensions, staged, pending: new Map(), pendingChunks: 0, suspect };
  recomputePending(index, staging);
  return staging;
}

/** Records that a document's current version has staged vectors (no longer pending). */
export function markStaged(staging: Staging, docId: string, contentHash: string, chunks: number): void {
  staging.staged.set(docId, { contentHash, chunks });
  unpend(staging, docId);
}

export function unpend(staging: Staging, docId: string): void {
  const chunks = staging.pending.get(docId);
  if (chunks === undefined) return;
  staging.pending.delete(docId);
  staging.pendingChunks -= chunks;
}

/** Which live documents lack staged vectors of their current version: one pass over the tenant. */
export function recomputePending(index: TenantIndex, staging: Staging): void {
  staging.pending.clear();
  staging.pendingChunks = 0;
  for (const entry of index.documents()) {
    const chunks = entry.slots.length;
    const staged = staging.staged.get(entry.docId);
    if (staged && staged.contentHash === entry.contentHash && staged.chunks === chunks) continue;
    staging.pending.set(entry.docId, chunks);
    staging.pendingChunks += chunks;
  }
}
