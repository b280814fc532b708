import type { DocumentChunks, UpsertOptions } from '../../domain.js';
import { ErrorType, RaglineError } from '../../errors.js';
import { vectorProblem } from '../dense-index.js';
import { embedDocuments, embedderIdentity, type Embedder } from '../embedder.js';

/**
 * A tenant's vectors on disk: each chunk's float32 vector as base64, carried in the same journal record and snapshot
 * line as its text, so the lexical and dense parts can never disagree. They are computed and checked before anything
 * is written: a failing embedder fails the whole batch.
 */

/** The embedder a tenant's vectors came from (model and document mode), and their size. */
export interface EmbeddingIdentity {
  identity: string;
  dimensions: number;
}

/** A document as persisted: its chunks plus, with an embedder, one base64 float32 vector per chunk. */
export type StoredDocument = DocumentChunks & { vectors?: string[] };

export function encodeVector(vector: Float32Array): string {
  return Buffer.from(vector.buffer, vector.byteOffset, vector.byteLength).toString('base64');
}

export function decodeVector(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

/**
 * Embeds `docs` (all of them or none: any failure rejects the batch before it is written) when an embedder is
 * configured, refusing a tenant whose vectors came from a different embedder.
 */
export async function withVectors(
  embedder: Embedder | undefined,
  tenant: { name: string; embedding?: EmbeddingIdentity },
  docs: DocumentChunks[],
  options: UpsertOptions,
): Promise<StoredDocument[]> {
  if (!embedder) return docs;
  if (tenant.embedding && tenant.embedding.identity !== embedderIdentity(embedder)) {
    throw new RaglineError(
      ErrorType.Configuration,
      `tenant ${tenant.name} holds vectors from embedder ${tenant.embedding.identity}; the configured embedder ` +
        `is ${embedderIdentity(embedder)}. Delete the tenant's documents (or the index directory) and ingest again to ` +
        're-embed; mixing models would make similarities meaningless',
    );
  }
  const vectors = await embedDocuments(embedder, docs, options);
  const chunks = docs.reduce((sum, doc) => sum + doc.chunks.length, 0);
  if (vectors.length !== chunks) {
    throw new RaglineError(
      ErrorType.BadResponse,
      `embedder ${embedderIdentity(embedder)} returned ${vectors.length} vectors for ${chunks} chunks; nothing was written`,
    );
  }
  let next = 0;
  return docs.map((doc) => {
    const encoded = doc.chunks.map((chunk) => {
      const vector = vectors[next++]!;
      const problem = vectorProblem(vector, embedder.dimensions);
      if (problem) {
        throw new RaglineError(
          ErrorType.BadResponse,
          `embedder ${embedderIdentity(embedder)} returned a vector for chunk ${chunk.id} that ${problem}; nothing was written`,
        );
      }
      return encodeVector(Float32Array.from(vector));
    });
    return { ...doc, vectors: encoded };
  });
}
