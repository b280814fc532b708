import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../lib/config.js';
import {
  cacheTtls,
  chunkKey,
  docTag,
  embeddingKey,
  levelOf,
  llmKey,
  normalizeQuery,
  resultKey,
  semanticBucketKey,
  type ResultScope,
} from '../../lib/cache/keys.js';

const scope: ResultScope = { tenant: 'acme', corpusVersion: 3, topK: 5, generatorModel: 'gpt-4o-mini' };

describe('cache keys', () => {
  it('folds spellings of one question into one result key', () => {
    expect(normalizeQuery('  How do I\tRESET my   password?!  ')).toBe('how do i reset my password');
    expect(normalizeQuery('ｆｕｌｌｗｉｄｔｈ')).toBe('fullwidth');
    expect(normalizeQuery('What is C#?')).toBe('what is c#');
    expect(resultKey(scope, 'How do I reset my password?')).toBe(resultKey(scope, 'how do i  reset my password'));
  });

  it('separates tenants, corpus versions, parameters and models', () => {
    const base = resultKey(scope, 'q');
    const variants = [
      resultKey({ ...scope, tenant: 'globex' }, 'q'),
      resultKey({ ...scope, corpusVersion: 4 }, 'q'),
      resultKey({ ...scope, topK: 6 }, 'q'),
      resultKey({ ...scope, generatorModel: 'extractive' }, 'q'),
      resultKey({ ...scope, options: { temperature: 0.2 } }, 'q'),
      resultKey(scope, 'q2'),
    ];
    expect(new Set([base, ...variants]).size).toBe(variants.length + 1);
    expect(resultKey({ ...scope, options: { a: 1, b: 2 } }, 'q')).toBe(
      resultKey({ ...scope, options: { b: 2, a: 1 } }, 'q'),
    );
    expect(semanticBucketKey(scope)).not.toBe(semanticBucketKey({ ...scope, corpusVersion: 4 }));
  });

  it('shapes keys as level:tenant:sha256 and keeps a tenant from forging structure', () => {
    expect(resultKey(scope, 'q')).toMatch(/^result:acme:[0-9a-f]{64}$/);
    expect(chunkKey({ tenant: 'acme', chunkId: 'a#0', contentHash: 'h' })).toMatch(/^chunk:acme:[0-9a-f]{64}$/);
    expect(llmKey({ tenant: 'a:b', model: 'm', prompt: 'p', temperature: 0, maxTokens: 5 })).toMatch(/^llm:a%3Ab:/);
    expect(embeddingKey({ model: 'm', dimensions: 8, text: 't' })).toMatch(/^embedding:[0-9a-f]{64}$/);
    expect(embeddingKey({ model: 'm', dimensions: 8, text: 't' })).not.toBe(
      embeddingKey({ model: 'm', dimensions: 16, text: 't' }),
    );
    expect(llmKey({ tenant: 't', model: 'm', prompt: 'p', temperature: 0, maxTokens: 5 })).not.toBe(
      llmKey({ tenant: 't', model: 'm', prompt: 'p', temperature: 0.5, maxTokens: 5 }),
    );
    expect(docTag('acme', 'd1')).not.toBe(docTag('globex', 'd1'));
    expect(levelOf(resultKey(scope, 'q'))).toBe('result');
    expect(levelOf('other:x')).toBeUndefined();
  });

  it('reads TTLs per level from config', () => {
    const ttls = cacheTtls(loadConfig({}));
    expect(ttls).toEqual({
      result: 3_600_000,
      semantic: 3_600_000,
      embedding: 86_400_000,
      chunk: 86_400_000,
      llm: 86_400_000,
    });
  });
});
