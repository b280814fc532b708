/** Turns texts into dense vectors, one per text, in order. */
export interface Embedder {
  readonly model: string;
  readonly dimensions: number;
  embed(texts: string[]): Promise<number[][]>;
}

/** What identifies one embedding: the same shape as the cache module's `embeddingKey` input. */
export interface EmbeddingCacheKey {
  model: string;
  dimensions: number;
  text: string;
}

/**
 * Optional store of computed embeddings, so re-ingesting unchanged text or repeating a query costs no API call.
 * The composition root adapts the shared Cache to it (key with `embeddingKey`, TTL from config).
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
