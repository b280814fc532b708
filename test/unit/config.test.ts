import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config.js';

describe('configuration', () => {
  it('has defaults for everything, so nothing needs configuring', () => {
    const config = loadConfig({});
    expect(config.RAGLINE_TOP_K).toBe(5);
    expect(config.RAGLINE_MAX_QUERY_CHARS).toBe(4000);
    expect(config.RAGLINE_CACHE_TTL_RESULT_SECONDS).toBe(3600);
    expect(config.TEMPORAL_ADDRESS).toBeUndefined();
    expect(config.RAGLINE_SEMANTIC_CACHE).toBe(true);
  });

  it('parses booleans as words, so "false" is false', () => {
    expect(loadConfig({ RAGLINE_SEMANTIC_CACHE: 'false' }).RAGLINE_SEMANTIC_CACHE).toBe(false);
    expect(loadConfig({ RAGLINE_LOG_REDACT_QUERIES: '1' }).RAGLINE_LOG_REDACT_QUERIES).toBe(true);
  });

  it('fails fast naming the variable', () => {
    expect(() => loadConfig({ RAGLINE_TOP_K: 'many' })).toThrow(ConfigError);
    expect(() => loadConfig({ RAGLINE_TOP_K: 'many' })).toThrow(/RAGLINE_TOP_K/);
    expect(() => loadConfig({ RAGLINE_SEMANTIC_CACHE: 'maybe' })).toThrow(/RAGLINE_SEMANTIC_CACHE/);
    expect(() => loadConfig({ RAGLINE_LLM_PRICES: '{not json' })).toThrow(/RAGLINE_LLM_PRICES/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL/);
  });

  it('treats an empty optional variable as unset', () => {
    expect(loadConfig({ REDIS_URL: '' }).REDIS_URL).toBeUndefined();
  });
});

describe('.env.example', () => {
  it('lists every variable of the schema', async () => {
    const { configSchema } = await import('../../lib/config.js');
    const fs = await import('node:fs');
    const text = fs.readFileSync(new URL('../../.env.example', import.meta.url), 'utf8');
    const listed = new Set([...text.matchAll(/^([A-Z0-9_]+)=/gm)].map((m) => m[1]));
    expect(Object.keys(configSchema.shape).filter((name) => !listed.has(name))).toEqual([]);
  });
});
