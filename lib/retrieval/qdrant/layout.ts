import { ErrorType, RaglineError } from '../../errors.js';
import { embedderIdentity, type Embedder } from '../embedder.js';
import { DENSE, SPARSE } from './points.js';

/** A collection whose vectors are not the ones this store writes and searches; nothing of it is changed. */
export class QdrantLayoutError extends RaglineError {
  constructor(message: string) {
    super(ErrorType.Configuration, message);
  }
}

/** What a collection's description says about its vectors (the part of `getCollection` this check reads). */
export interface CollectionVectors {
  config: { params: { vectors?: unknown; sparse_vectors?: unknown }; metadata?: unknown };
}

/** The embedding a collection ragline created records in its `metadata`: which embedder its dense vectors came from. */
export interface RecordedEmbedding {
  /** `embedderIdentity` of the embedder; null for a collection created without a dense vector. */
  identity: string | null;
  dimensions: number | null;
}

/** The collection metadata ragline writes at creation (Qdrant keeps it with the collection). */
export function embeddingMetadata(embedder: Embedder | undefined): Record<string, unknown> {
  return {
    ragline_embedding_identity: embedder ? embedderIdentity(embedder) : null,
    ragline_embedding_dimensions: embedder ? embedder.dimensions : null,
  };
}

/** What ragline recorded at creation, or undefined for a collection it did not create (or created before it recorded). */
export function recordedEmbedding(info: CollectionVectors): RecordedEmbedding | undefined {
  const metadata = (info.config.metadata ?? {}) as Record<string, unknown>;
  if (!('ragline_embedding_identity' in metadata)) return undefined;
  const identity = metadata.ragline_embedding_identity;
  const dimensions = metadata.ragline_embedding_dimensions;
  return {
    identity: typeof identity === 'string' ? identity : null,
    dimensions: typeof dimensions === 'number' ? dimensions : null,
  };
}

/**
 * Whether `embedder`'s query vectors can search this collection's dense vectors: the recorded identity and size
 * must be the embedder's. A collection with nothing recorded (written by an older ragline) is taken at its dense
 * vector's size, as it always was.
 */
export function denseUsable(info: CollectionVectors, embedder: Embedder | undefined): boolean {
  if (!embedder) return false;
  const recorded = recordedEmbedding(info);
  if (recorded) return recorded.identity === embedderIdentity(embedder) && recorded.dimensions === embedder.dimensions;
  const dense = ((info.config.params.vectors ?? {}) as Record<string, { size?: number } | undefined>)[DENSE];
  return dense?.size === embedder.dimensions;
}

/** Why this collection's vectors cannot hold QdrantStore's points, or undefined when they can. */
export function layoutProblem(
  collection: string,
  info: CollectionVectors,
  embedder: Embedder | undefined,
): string | undefined {
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
  // In a collection ragline created, another embedder's vectors are a re-embedding's matter (reembedder.ts), not a
  // layout problem: its tenants answer lexically, flagged, until re-embedded into collections of their own.
  if (embedder && !recordedEmbedding(info)) {
    const dense = named[DENSE] as { size?: number } | undefined;
    if (typeof named.size !== 'number' && !dense) problems.push(`no dense vector "${DENSE}"`);
    else if (dense && dense.size !== embedder.dimensions)
      problems.push(`dense "${DENSE}" of ${dense.size} dimensions where the embedder makes ${embedder.dimensions}`);
  }
  if (problems.length === 0) return undefined;
  return (
    `Qdrant collection ${collection} (QDRANT_COLLECTION) has a different vector layout: ${problems.join(', ')}. ` +
    `It has ${found.length > 0 ? found.join(', ') : 'no vectors'}; ragline needs sparse "${SPARSE}" (idf)` +
    `${embedder ? ` and dense "${DENSE}" of ${embedder.dimensions} dimensions` : ''}. ` +
    'Nothing was written to it: point QDRANT_COLLECTION at another collection.'
  );
}

function describeDense(params: unknown): string {
  const { size, distance } = (params ?? {}) as { size?: number; distance?: string };
  return `${size ?? '?'} dimensions, ${distance ?? '?'}`;
}

/** A Qdrant client error's message, with the server's own explanation when it sent one. */
export function describeQdrantError(error: unknown): string {
  if (error instanceof Error) {
    const data = (error as { data?: { status?: { error?: string } } }).data;
    return data?.status?.error ? `${error.message}: ${data.status.error}` : error.message;
  }
  return String(error);
}

/** A failed Qdrant request as a typed RaglineError: Configuration for our own bad request, Unavailable otherwise. */
export function unavailable(operation: string, error: unknown, url: string): RaglineError {
  if (error instanceof RaglineError) return error;
  const status = (error as { status?: number }).status;
  // 4xx other than 408/429 mean our request or configuration is wrong: retrying sends the same thing.
  const type =
    status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429
      ? ErrorType.Configuration
      : ErrorType.Unavailable;
  // No status means no answer at all: say which setting points at the server that did not answer.
  const where = status === undefined ? ` (Qdrant at ${url}, QDRANT_URL)` : '';
  return new RaglineError(type, `Qdrant ${operation} failed${where}: ${describeQdrantError(error)}`, { cause: error });
}
