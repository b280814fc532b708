import MiniSearch from 'minisearch';
import type { BeirDoc } from '../datasets/beir.js';
import type { Engine } from './engine.js';

export function miniSearchEngine(): Engine {
  let index: MiniSearch<BeirDoc> | undefined;
  return {
    name: 'minisearch',
    async build(corpus) {
      // MiniSearch's defaults: BM25+ (k 1.2, b 0.7, d 0.5), OR of terms, no stemming, no prefix/fuzzy.
      index = new MiniSearch<BeirDoc>({ idField: '_id', fields: ['title', 'text'] });
      index.addAll(corpus);
    },
    async search(query, k) {
      const results = index!.search(query).slice(0, k);
      return new Map(results.map((result) => [String(result.id), result.score]));
    },
    async dispose() {
      index = undefined;
    },
  };
}
