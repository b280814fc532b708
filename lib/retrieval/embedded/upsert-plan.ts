import type { DocumentChunks, UpsertResult } from '../../domain.js';
import type { TenantIndex } from '../lexical-index.js';

/** What an upsert may store and what it reports, decided before anything is embedded or written. */

/** Why a document cannot be stored, or undefined when it can. Lets callers skip bad documents in a batch. */
export function validateDocument(doc: DocumentChunks): string | undefined {
  if (typeof doc.docId !== 'string' || doc.docId.trim() === '') return 'document id is empty';
  if (typeof doc.contentHash !== 'string' || doc.contentHash === '') return `document ${doc.docId} has no content hash`;
  if (!Array.isArray(doc.chunks) || doc.chunks.length === 0) return `document ${doc.docId} has no chunks`;
  if (doc.chunks.every((chunk) => chunk.text.trim() === '')) return `document ${doc.docId} has no text`;
  const ids = new Set<string>();
  for (const chunk of doc.chunks) {
    if (chunk.docId !== doc.docId) return `chunk ${chunk.id} belongs to ${chunk.docId}, not ${doc.docId}`;
    if (ids.has(chunk.id)) return `document ${doc.docId} repeats chunk id ${chunk.id}`;
    ids.add(chunk.id);
  }
  return undefined;
}

/** Each document's outcome, and the documents to write: the last copy of a docId in a batch wins, as in order. */
export function planUpsert(
  index: TenantIndex,
  docs: DocumentChunks[],
): { changed: DocumentChunks[]; results: UpsertResult[] } {
  const latest = new Map(docs.map((doc) => [doc.docId, doc]));
  const changed = [...latest.values()].filter((doc) => index.contentHash(doc.docId) !== doc.contentHash);
  const results = docs.map((doc): UpsertResult => {
    const stored = index.contentHash(doc.docId);
    const status = stored === undefined ? 'added' : stored === doc.contentHash ? 'unchanged' : 'updated';
    return { docId: doc.docId, status, chunks: doc.chunks.length };
  });
  return { changed, results };
}
