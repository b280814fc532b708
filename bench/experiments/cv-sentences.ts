import { DEFAULT_FUSION, fuseHybrid, fuseWeightedLegs } from '../../lib/retrieval/fusion.js';
import { evaluateQuery, type Run } from '../../lib/retrieval/ir-metrics.js';
import type { OpenAIEmbedder } from '../../lib/retrieval/openai-embedder.js';
import type { Dataset } from '../datasets/beir.js';
import { embedAll } from '../embeddings.js';
import { denseSetup } from '../engines/dense.js';
import { SENTENCE_SCORINGS, SentenceVectors, splitSentences, type SentenceScoring } from '../sentence-dense.js';
import { logFolds, meanOver, pairedDifference, tuneByCrossValidation } from './cross-validation.js';
import { rankedList, round } from './figures.js';

/**
 * Sentence-level dense scoring ("MaxP", Dai & Callan 2019; "small-to-big"): a SciFact claim usually restates one
 * rationale sentence, and one vector for the whole abstract dilutes it. Every abstract sentence (splitSentences,
 * plain text, passage mode) is embedded once through the cache; a document's dense score is then
 * (1 - α) × cos(query, title + abstract) + α × S, where S is one of bench/sentence-dense.ts's scorings (best
 * sentence, best two, best window of two or three). The top 100 by that score are fused with the same lexical top 100
 * as the store does (z-score, weight w); or ("legs") the abstract and sentence scores are two dense lists, z-scored
 * and weighted apart (w(1 - α), wα). α = 0 is today's hybrid, so the cross-validation can choose it. Not kept: the
 * dense leg improves held out, the hybrid does not (lib/retrieval/README.md, "SciFact"). About 35 minutes of
 * embedding the first time (44,618 sentences on 2 cores).
 */
export async function crossValidateSentences(
  dataset: Dataset,
  queryIds: string[],
  lexical: Run,
  embedder: OpenAIEmbedder,
): Promise<void> {
  const { index, queryVectors } = await denseSetup(dataset, queryIds, embedder);
  const depth = DEFAULT_FUSION.depth;
  const perDocument = dataset.corpus.map((doc) => splitSentences(doc.text));
  const texts = perDocument.flat();
  const started = performance.now();
  const sentenceVectors = new SentenceVectors(
    await embedAll(embedder, texts, 'document', 'sentences', 64),
    perDocument.map((sentences) => sentences.length),
    embedder.dimensions,
  );
  console.log(
    `sentences: ${texts.length} over ${dataset.corpus.length} documents ` +
      `(${round((performance.now() - started) / 1000, 1)} s to load or embed)`,
  );
  type Scoring = SentenceScoring;
  const scorings = SENTENCE_SCORINGS;
  const features = new Map<string, { abstract: Float32Array } & Record<Scoring, Float32Array>>();
  for (const id of queryIds) {
    const query = queryVectors.get(id)!;
    const abstractById = new Map(index.searchExact(query, dataset.corpus.length).map((m) => [m.id, m.score]));
    const abstract = Float32Array.from(dataset.corpus, (doc) => abstractById.get(doc._id)!);
    features.set(id, { abstract, ...sentenceVectors.scores(query) });
  }
  interface SentenceConfig {
    scoring: Scoring;
    alpha: number;
    denseWeight: number;
    /** `cosine`: one dense leg of mixed cosines; `legs`: abstract and sentence legs z-scored and fused apart. */
    combine: 'cosine' | 'legs';
  }
  const configs: SentenceConfig[] = [];
  for (const denseWeight of [0.4, 0.5, 0.6]) {
    configs.push({ scoring: 'max', alpha: 0, denseWeight, combine: 'cosine' });
    for (const scoring of scorings) {
      for (const alpha of [0.25, 0.5, 0.75, 1]) configs.push({ scoring, alpha, denseWeight, combine: 'cosine' });
      for (const alpha of [0.25, 0.5, 0.75]) configs.push({ scoring, alpha, denseWeight, combine: 'legs' });
    }
  }
  const describe = (c: SentenceConfig) =>
    c.alpha === 0
      ? `abstract only, w=${c.denseWeight}`
      : `${c.combine === 'legs' ? 'legs ' : ''}${c.scoring} α=${c.alpha} w=${c.denseWeight}`;
  const top = (scores: Float32Array) =>
    dataset.corpus
      .map((doc, d) => ({ id: doc._id, score: scores[d]! }))
      .sort((x, y) => y.score - x.score)
      .slice(0, depth);
  const denseList = (id: string, c: SentenceConfig) => {
    const f = features.get(id)!;
    const sentence = f[c.scoring];
    return top(f.abstract.map((abstract, d) => (1 - c.alpha) * abstract + c.alpha * sentence[d]!));
  };
  const lexicalLists = new Map(queryIds.map((id) => [id, rankedList(lexical.get(id), depth)]));
  const perConfig = new Map<string, Map<string, number>>();
  // The dense leg alone, per query, for the cosine-mix configurations (w plays no part there; those at 0.5 stand).
  const denseAlone = new Map<string, Map<string, number>>();
  for (const config of configs) {
    const scores = new Map<string, number>();
    const denseScores = new Map<string, number>();
    for (const id of queryIds) {
      if (config.combine === 'legs') {
        const f = features.get(id)!;
        const fused = fuseWeightedLegs(
          [
            { list: lexicalLists.get(id)!, weight: 1 - config.denseWeight },
            { list: top(f.abstract), weight: config.denseWeight * (1 - config.alpha) },
            { list: top(f[config.scoring]), weight: config.denseWeight * config.alpha },
          ],
          'z-score',
        );
        scores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(fused.map((m) => [m.id, m.score])), 10).ndcg);
        continue;
      }
      const dense = denseList(id, config);
      if (config.denseWeight === 0.5) {
        denseScores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(dense.map((m) => [m.id, m.score])), 10).ndcg);
      }
      const fused = fuseHybrid(
        lexicalLists.get(id)!,
        dense,
        { ...DEFAULT_FUSION, denseWeight: config.denseWeight },
        100,
      );
      scores.set(id, evaluateQuery(dataset.qrels.get(id)!, new Map(fused.map((m) => [m.id, m.score])), 10).ndcg);
    }
    perConfig.set(describe(config), scores);
    if (config.denseWeight === 0.5 && config.combine === 'cosine') denseAlone.set(describe(config), denseScores);
  }
  const all = (scores: Map<string, number>) => meanOver(scores, queryIds);
  console.log(
    `sentence dense leg alone (nDCG@10): ${[...denseAlone].map(([c, scores]) => `${c} ${all(scores)}`).join('; ')}`,
  );
  const aloneConfigs = configs.filter((c) => c.denseWeight === 0.5 && c.combine === 'cosine');
  const alone = tuneByCrossValidation(
    'cv sentences, dense leg alone (scoring, α)',
    aloneConfigs,
    describe,
    (c) => denseAlone.get(describe(c))!,
    queryIds,
  );
  pairedDifference(
    `dense alone: ${alone.fullConfig} vs abstract only`,
    denseAlone.get(alone.fullConfig)!,
    denseAlone.get(describe(aloneConfigs[0]!))!,
    queryIds,
  );
  console.log(
    `sentence hybrid by config: ${configs.map((c) => `${describe(c)} ${all(perConfig.get(describe(c))!)}`).join('; ')}`,
  );
  const baseline = perConfig.get(
    describe({ scoring: 'max', alpha: 0, denseWeight: DEFAULT_FUSION.denseWeight, combine: 'cosine' }),
  )!;
  logFolds('default hybrid', baseline, queryIds);
  const pick = (label: string, subset: SentenceConfig[]) => {
    const chosen = tuneByCrossValidation(label, subset, describe, (c) => perConfig.get(describe(c))!, queryIds);
    pairedDifference(`${chosen.fullConfig} vs default hybrid`, perConfig.get(chosen.fullConfig)!, baseline, queryIds);
  };
  pick('cv sentences (scoring, α, w)', configs);
  pick(
    'cv sentences (scoring, α; w 0.5)',
    configs.filter((c) => c.denseWeight === 0.5),
  );
  for (const scoring of scorings) {
    pick(
      `cv sentences (${scoring}: α; w 0.5)`,
      configs.filter(
        (c) => c.denseWeight === 0.5 && (c.alpha === 0 || (c.scoring === scoring && c.combine === 'cosine')),
      ),
    );
  }
  pick(
    'cv sentences (cosine mix only: scoring, α, w)',
    configs.filter((c) => c.combine === 'cosine'),
  );
  pick(
    'cv sentences (separate legs only: scoring, α, w)',
    configs.filter((c) => c.combine === 'legs' || c.alpha === 0),
  );
}
