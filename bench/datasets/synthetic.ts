/**
 * A synthetic corpus for `--synthetic N`: chunks of invented words with English-like (Zipf) frequencies, and queries
 * drawn from the same distribution. Seeded (lib/random.ts), so every run indexes and asks exactly the same text.
 */
import type { DocumentChunks } from '../../lib/domain.js';
import { seededRandom } from '../../lib/random.js';

/** A Zipf(s = 1.07) sampler over `size` invented words, like word frequencies in English text. */
export function zipfWords(size: number, random: () => number): () => string {
  const syllables = [
    'ka',
    'lo',
    'mi',
    'ne',
    'ru',
    'sa',
    'ti',
    'vo',
    'ze',
    'pa',
    'qui',
    'dor',
    'ban',
    'fel',
    'gri',
    'hom',
  ];
  const words = Array.from({ length: size }, (_, rank) => {
    let word = '';
    for (let n = rank + 1; n > 0; n = Math.floor(n / syllables.length)) word += syllables[n % syllables.length];
    return `${word}x`;
  });
  const cdf = new Float64Array(size);
  let total = 0;
  for (let rank = 0; rank < size; rank++) cdf[rank] = total += 1 / Math.pow(rank + 1, 1.07);
  return () => {
    const target = random() * total;
    let low = 0;
    let high = size - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (cdf[mid]! < target) low = mid + 1;
      else high = mid;
    }
    return words[low]!;
  };
}

export interface SyntheticCorpus {
  /** One word of the vocabulary, drawn by its frequency. */
  word(): string;
  /** Document `s<n>`: one chunk, a title of 3-8 words and a text of 20-59. */
  document(n: number): DocumentChunks;
  /** A query of 2-5 words. */
  query(): string;
}

/**
 * One seeded stream for documents and queries alike, so what a run draws depends on the order of the calls: the
 * synthetic experiment generates every document, then one warm-up word, then its queries.
 */
export function syntheticCorpus(seed = 42, vocabulary = 100_000): SyntheticCorpus {
  const random = seededRandom(seed);
  const word = zipfWords(vocabulary, random);
  const sentence = (length: number) => Array.from({ length }, word).join(' ');
  return {
    word,
    document(n) {
      const title = sentence(3 + Math.floor(random() * 6));
      const text = sentence(20 + Math.floor(random() * 40));
      return {
        docId: `s${n}`,
        title,
        contentHash: String(n),
        chunks: [{ id: `s${n}#0`, docId: `s${n}`, title, text, position: 0 }],
      };
    },
    query: () => sentence(2 + Math.floor(random() * 4)),
  };
}
