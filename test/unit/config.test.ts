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
    const key = 'k'.repeat(32);
    expect(loadConfig({ RAGLINE_LOG_REDACT_QUERIES: '1', RAGLINE_REDACT_KEY: key }).RAGLINE_LOG_REDACT_QUERIES).toBe(
      true,
    );
  });

  it('refuses redaction without a secret of at least 32 characters, naming the setting', () => {
    expect(() => loadConfig({ RAGLINE_LOG_REDACT_QUERIES: 'true' })).toThrow(
      /RAGLINE_REDACT_KEY: redacting queries needs/,
    );
    expect(() => loadConfig({ RAGLINE_LOG_REDACT_QUERIES: 'true', RAGLINE_REDACT_KEY: 'short' })).toThrow(
      /at least 32/,
    );
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

describe('resilience settings', () => {
  it('defaults to a 10 s deadline and conservative breakers, with per-dependency overrides', async () => {
    const { breakerSettings } = await import('../../lib/config.js');
    const config = loadConfig({
      RAGLINE_BREAKER_LLM: 'openMs=5000, minCalls=4',
      RAGLINE_BREAKER_STORE: 'halfOpenProbes=3',
    });
    expect(config.RAGLINE_QUERY_DEADLINE_MS).toBe(10_000);
    const settings = breakerSettings(config);
    expect(settings.store).toEqual({ failureRatio: 0.5, window: 20, minCalls: 10, openMs: 30_000, halfOpenProbes: 3 });
    expect(settings.llm).toEqual({ failureRatio: 0.5, window: 20, minCalls: 4, openMs: 5000, halfOpenProbes: 1 });
    expect(settings.cache.halfOpenProbes).toBe(1);
  });

  it.each([
    [{ RAGLINE_BREAKER_WINDOW: '0' }, /RAGLINE_BREAKER_WINDOW/],
    [{ RAGLINE_BREAKER_OPEN_MS: '-5' }, /RAGLINE_BREAKER_OPEN_MS/],
    [{ RAGLINE_BREAKER_FAILURE_RATIO: '0' }, /RAGLINE_BREAKER_FAILURE_RATIO/],
    [{ RAGLINE_BREAKER_FAILURE_RATIO: '1.5' }, /RAGLINE_BREAKER_FAILURE_RATIO/],
    // cockatiel's count breaker opens on failures above the ratio: at 1 it never could, and it throws at start-up.
    [{ RAGLINE_BREAKER_FAILURE_RATIO: '1' }, /RAGLINE_BREAKER_FAILURE_RATIO/],
    [{ RAGLINE_BREAKER_LLM: 'failureRatio=1' }, /RAGLINE_BREAKER_LLM: failureRatio must be in \(0, 1\)/],
    [{ RAGLINE_BREAKER_HALF_OPEN_PROBES: '0' }, /RAGLINE_BREAKER_HALF_OPEN_PROBES/],
    [{ RAGLINE_BREAKER_HALF_OPEN_PROBES: '-2' }, /RAGLINE_BREAKER_HALF_OPEN_PROBES/],
    [{ RAGLINE_BREAKER_STORE: 'halfOpenProbes=0' }, /RAGLINE_BREAKER_STORE: halfOpenProbes/],
    [{ RAGLINE_BREAKER_EMBEDDER: 'halfOpenProbes=1.5' }, /RAGLINE_BREAKER_EMBEDDER: halfOpenProbes/],
    [{ RAGLINE_BREAKER_CACHE: 'minCalls=-3' }, /RAGLINE_BREAKER_CACHE: minCalls/],
    [{ RAGLINE_BREAKER_MIN_CALLS: '30' }, /RAGLINE_BREAKER_MIN_CALLS.*window \(20\)/],
    [{ RAGLINE_BREAKER_LLM: 'window=0' }, /RAGLINE_BREAKER_LLM: window/],
    [{ RAGLINE_BREAKER_STORE: 'openMs=-1' }, /RAGLINE_BREAKER_STORE: openMs/],
    [{ RAGLINE_BREAKER_CACHE: 'speed=fast' }, /RAGLINE_BREAKER_CACHE/],
    [{ RAGLINE_QUERY_DEADLINE_MS: '-1' }, /RAGLINE_QUERY_DEADLINE_MS/],
    [{ RAGLINE_QUERY_DEADLINE_MS: '1500' }, /RAGLINE_QUERY_DEADLINE_MS: 1500 ms is shorter than the 2000 ms/],
  ])('stops start-up naming the variable for %o', (env, pattern) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(pattern);
  });
});
