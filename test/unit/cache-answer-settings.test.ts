import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import type { LookupResult } from '../../activities/query-types.js';
import { answerSettingsHash } from '../../lib/cache/keys.js';
import { MemoryCache } from '../../lib/cache/memory-cache.js';
import { loadConfig } from '../../lib/config.js';
import { ExtractiveGenerator } from '../../lib/generation/extractive.js';
import { EmbeddedStore } from '../../lib/retrieval/embedded-store.js';
import { createLogger } from '../../lib/telemetry/logger.js';
import { createRuntime } from '../../workers/runtime.js';
import type { AnswerQueryResult } from '../../contracts/query.js';

/** MockActivityEnvironment.run loses the activity's result type; this keeps it. */
const call = <I, O>(env: MockActivityEnvironment, activity: (input: I) => Promise<O>, input: I): Promise<O> =>
  env.run(activity, input) as Promise<O>;

// An LLM deployment; each variant changes one setting that changes what an answer says.
const base = {
  OPENAI_BASE_URL: 'http://127.0.0.1:9/v1',
  OPENAI_MODEL: 'local-model',
  OPENAI_TEMPERATURE: '0',
  OPENAI_MAX_TOKENS: '512',
  RAGLINE_CONTEXT_TOKENS: '3000',
};
const variants: Record<string, Record<string, string>> = {
  temperature: { OPENAI_TEMPERATURE: '0.7' },
  'endpoint base URL': { OPENAI_BASE_URL: 'http://127.0.0.1:10/v1' },
  'context budget': { RAGLINE_CONTEXT_TOKENS: '1500' },
  'max tokens': { OPENAI_MAX_TOKENS: '128' },
  model: { OPENAI_MODEL: 'other-model' },
  'embedding model': { OPENAI_EMBEDDING_MODEL: 'text-embedding-3-small' },
  'Qdrant collection': { QDRANT_URL: 'http://127.0.0.1:6333', QDRANT_COLLECTION: 'other' },
};
const QUESTION = 'How do I rotate the signing keys?';

describe('result cache keys carry every answer-changing setting', () => {
  let dir: string;
  let store: EmbeddedStore;
  const cache = new MemoryCache();
  const env = new MockActivityEnvironment();

  // The runtime as a worker builds it; the generator is given so nothing calls the (unreachable) endpoint.
  const activitiesFor = async (overrides: Record<string, string>) => {
    const config = loadConfig({ ...base, ...overrides, RAGLINE_DATA_DIR: dir });
    const runtime = await createRuntime(config, {
      cache,
      store,
      generator: new ExtractiveGenerator(),
      logger: createLogger({ level: 'silent' }),
    });
    return createActivities(runtime.deps);
  };
  const lookup = async (overrides: Record<string, string>): Promise<LookupResult> => {
    const activities = await activitiesFor(overrides);
    return call(env, activities.lookupCachedAnswer, { query: QUESTION, tenant: 'acme' });
  };

  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'ragline-settings-'));
    store = await EmbeddedStore.open(dir);
    const activities = await activitiesFor({});
    const miss = await call(env, activities.lookupCachedAnswer, { query: QUESTION, tenant: 'acme' });
    if (miss.status !== 'miss') throw new Error('the cache should start empty');
    const answer = {
      answer: 'Rotate them with the admin CLI [1].',
      sources: [],
      qualityScore: 0.9,
      model: 'local-model',
      citations: [1],
      corpusVersion: miss.corpusVersion,
    } as unknown as AnswerQueryResult;
    await call(env, activities.storeCachedAnswer, { scope: miss.scope, query: QUESTION, answer });
  });

  afterAll(async () => {
    await store.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('serves the cached answer while the settings are unchanged', async () => {
    expect((await lookup({})).status).toBe('hit');
    // A rotated key or a longer timeout does not change what is said.
    expect((await lookup({ OPENAI_API_KEY: 'sk-rotated', OPENAI_TIMEOUT_MS: '60000' })).status).toBe('hit');
    expect((await lookup({ OPENAI_BASE_URL: 'http://127.0.0.1:9/v1/' })).status).toBe('hit');
  });

  for (const [name, overrides] of Object.entries(variants)) {
    it(`misses after the ${name} changes`, async () => {
      const found = await lookup(overrides);
      expect(found.status).toBe('miss');
      // The exact key and the near-duplicate bucket both moved: no semantic hit either.
      expect(found.cache).toEqual({ result: 'miss' });
    });
  }

  it('gives each variant its own hash, and no secret a part in it', () => {
    const hashes = Object.values(variants).map((v) => answerSettingsHash(loadConfig({ ...base, ...v })));
    expect(new Set([answerSettingsHash(loadConfig(base)), ...hashes]).size).toBe(hashes.length + 1);
    expect(answerSettingsHash(loadConfig({ ...base, OPENAI_API_KEY: 'sk-a' }))).toBe(
      answerSettingsHash(loadConfig({ ...base, OPENAI_API_KEY: 'sk-b' })),
    );
  });
});
