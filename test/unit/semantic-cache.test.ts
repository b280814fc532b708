import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createCacheMetrics } from '../../lib/cache/cache-metrics.js';
import { resultKey, type ResultScope } from '../../lib/cache/keys.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { SemanticCache } from '../../lib/cache/semantic-cache.js';
import { compareQuestions, REFUSAL_REASONS } from '../../lib/cache/semantic-text.js';

interface Fixtures {
  mustHit: [string, string][];
  mustNotHit: { pair: [string, string]; reason: string }[];
}

const fixtures = JSON.parse(
  readFileSync(new URL('../fixtures/semantic-pairs.json', import.meta.url), 'utf8'),
) as Fixtures;
const THRESHOLD = 0.9;

describe('semantic fixtures', () => {
  it('has enough pairs of each kind', () => {
    expect(fixtures.mustHit.length).toBeGreaterThanOrEqual(20);
    expect(fixtures.mustNotHit.filter((p) => p.reason !== 'threshold').length).toBeGreaterThanOrEqual(20);
  });

  it.each(fixtures.mustHit)('serves %j for %j', (a, b) => {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      const comparison = compareQuestions(x, y);
      expect(comparison.refusal).toBeUndefined();
      expect(comparison.similarity).toBeGreaterThanOrEqual(THRESHOLD);
    }
  });

  it.each(fixtures.mustNotHit)('refuses $pair ($reason)', ({ pair: [a, b], reason }) => {
    for (const [x, y] of [
      [a, b],
      [b, a],
    ] as const) {
      const comparison = compareQuestions(x, y);
      if (reason === 'threshold') {
        expect(comparison.refusal !== undefined || comparison.similarity < THRESHOLD).toBe(true);
      } else {
        expect(comparison.refusal).toBe(reason);
      }
    }
  });

  it('leaves a margin around the threshold', () => {
    const hitMin = Math.min(...fixtures.mustHit.map(([a, b]) => compareQuestions(a, b).similarity));
    const unguarded = fixtures.mustNotHit.map(({ pair: [a, b] }) => compareQuestions(a, b)).filter((c) => !c.refusal);
    const missMax = Math.max(...unguarded.map((c) => c.similarity));
    expect(hitMin - THRESHOLD).toBeGreaterThan(0.05);
    expect(THRESHOLD - missMax).toBeGreaterThan(0.05);
  });
});

describe('SemanticCache', () => {
  const scope: ResultScope = { tenant: 'acme', corpusVersion: 7, topK: 5, generatorModel: 'extractive' };
  const minute = { ttlMs: 60_000 };

  const setup = (options: Partial<ConstructorParameters<typeof SemanticCache>[0]> = {}) => {
    const cache = new MemoryCache();
    const registry = new Registry();
    const metrics = createCacheMetrics(registry);
    const semantic = new SemanticCache({ cache, ttlMs: 60_000, metrics, ...options });
    const answer = async (s: ResultScope, question: string, value: string) => {
      const key = resultKey(s, question);
      await cache.set(key, value, minute);
      await semantic.remember(s, question, key);
      return key;
    };
    return { cache, registry, metrics, semantic, answer };
  };

  it('serves a paraphrase from the same tenant, corpus version and parameters only', async () => {
    const { semantic, answer, registry } = setup();
    const key = await answer(scope, 'How can I reset my password?', 'use the reset link');
    const hit = await semantic.get<string>(scope, 'how do I reset my password');
    expect(hit).toMatchObject({
      value: 'use the reset link',
      resultKey: key,
      question: 'How can I reset my password?',
    });
    expect(hit?.similarity).toBeGreaterThan(0.9);
    expect(await semantic.get(scope, 'How do I reset my username?')).toBeUndefined();
    expect(await semantic.get({ ...scope, tenant: 'globex' }, 'how do I reset my password')).toBeUndefined();
    expect(await semantic.get({ ...scope, corpusVersion: 8 }, 'how do I reset my password')).toBeUndefined();
    expect(await semantic.get({ ...scope, topK: 3 }, 'how do I reset my password')).toBeUndefined();
    expect(await registry.getSingleMetricAsString('rag_semantic_cache_hits_total')).toMatch(/ 1$/m);
  });

  it('counts guard refusals by reason', async () => {
    const { semantic, answer, metrics } = setup();
    await answer(scope, 'How do I enable 2FA?', 'enable it in settings');
    await answer(scope, 'Does the free plan include SSO?', 'no');
    expect(await semantic.get(scope, 'How do I disable 2FA?')).toBeUndefined();
    expect(await semantic.get(scope, 'Does the free plan not include SSO?')).toBeUndefined();
    const values = (await metrics.semanticRefusals.get()).values;
    expect(values.find((v) => v.labels.reason === 'negation')?.value).toBe(1);
    expect(REFUSAL_REASONS).toContain('antonym');
  });

  it('misses when the answer behind a match is gone', async () => {
    const { cache, semantic, answer } = setup();
    const key = await answer(scope, 'How do I rotate my API keys?', 'from the console');
    await cache.delete([key]);
    expect(await semantic.get(scope, 'How can I rotate API keys?')).toBeUndefined();
  });

  it('keeps only the most recent questions of a bucket', async () => {
    const { semantic, answer } = setup({ maxEntries: 2 });
    await answer(scope, 'How do I export my invoices?', 'invoices');
    await answer(scope, 'How do I configure SAML?', 'saml');
    await answer(scope, 'How do I verify webhook signatures?', 'hmac');
    expect(await semantic.get(scope, 'how can I export my invoices')).toBeUndefined();
    expect((await semantic.get<string>(scope, 'how to configure SAML'))?.value).toBe('saml');
  });

  it('uses dense similarity when an embedder is configured, still guarded', async () => {
    // A toy embedder that ignores negation: the guard, not the vectors, must refuse.
    const vocabulary = ['reset', 'password', 'enable', '2fa', 'export'];
    const embed = async (text: string) => vocabulary.map((w) => (text.toLowerCase().includes(w) ? 1 : 0));
    const { semantic, answer } = setup({ embed, threshold: 0.95 });
    await answer(scope, 'Reset password please', 'reset link');
    expect((await semantic.get<string>(scope, 'I forgot my password, reset it'))?.value).toBe('reset link');
    expect(await semantic.get(scope, 'I cannot reset my password')).toBeUndefined();
  });
});
