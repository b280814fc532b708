import { create, insertMultiple, search as oramaSearch } from '@orama/orama';
import type { Engine } from './engine.js';

export function oramaEngine(): Engine {
  const schema = { id: 'string', title: 'string', text: 'string' } as const;
  let db: ReturnType<typeof create<typeof schema>> | undefined;
  return {
    name: 'orama',
    async build(corpus) {
      // Orama's defaults: BM25 (k 1.2, b 0.75, d 0.5), English tokenizer without stemming, threshold 1 (OR), and
      // prefix matching of every query term, which costs it most of its precision here (`exact: true` matched nothing).
      db = create({ schema });
      await insertMultiple(
        db,
        corpus.map((doc) => ({ id: doc._id, title: doc.title ?? '', text: doc.text })),
        1000,
      );
    },
    async search(query, k) {
      const results = await oramaSearch(db!, { term: query, properties: ['title', 'text'], limit: k });
      return new Map(results.hits.map((hit) => [hit.id, hit.score]));
    },
    async dispose() {
      db = undefined;
    },
  };
}
