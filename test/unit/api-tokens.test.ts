import { describe, expect, it } from 'vitest';
import { authenticate, createApiToken, missingScope, parseApiTokens, type Scope } from '../../lib/api-tokens.js';

const HASH = 'a'.repeat(64);

describe('API tokens', () => {
  it("binds an operator's token to its name and an app's token to none", () => {
    const operator = createApiToken('acme', { expires: '2999-01-01', operator: 'alice' });
    const app = createApiToken('acme');
    expect(operator.entry).toMatch(/^acme:[0-9a-f]{64}:2999-01-01:operator=alice$/);
    const tokens = parseApiTokens(`${operator.entry},${app.entry}`);
    expect(authenticate(`Bearer ${operator.token}`, tokens)).toMatchObject({
      ok: true,
      caller: { tenant: 'acme', operator: 'alice' },
    });
    const asApp = authenticate(`Bearer ${app.token}`, tokens);
    expect(asApp).toMatchObject({ ok: true, caller: { tenant: 'acme' } });
    expect(asApp.ok && asApp.caller.operator).toBeUndefined();
  });

  it('accepts the operator before or after the expiry and refuses malformed or repeated fields, naming the entry', () => {
    expect(parseApiTokens(`t:${HASH}:operator=bob:2030-01-01`)[0]).toMatchObject({ tenant: 't', operator: 'bob' });
    expect(() => parseApiTokens(`t:${HASH},t:${HASH}:operator=`)).toThrow(/entry 2: operator/);
    expect(() => parseApiTokens(`t:${HASH}:operator=a b`)).toThrow(/entry 1: operator/);
    expect(() => parseApiTokens(`t:${HASH}:operator=a:operator=b`)).toThrow(/entry 1: operator/);
    expect(() => parseApiTokens(`t:${HASH}:2030-01-01:2031-01-01`)).toThrow(/entry 1: expiry/);
    expect(() => parseApiTokens(`t:${HASH}:soon`)).toThrow(/entry 1: expiry must be a real day as YYYY-MM-DD/);
    expect(() => createApiToken('acme', { operator: 'not valid' })).toThrow(/operator/);
  });

  it('refuses an expiry day no calendar has, in an entry and at creation, instead of rolling it over', () => {
    // new Date('2027-02-31') is 3 March 2027: the token would have lived three days longer than asked.
    expect(() => parseApiTokens(`t:${HASH}:2027-02-31`)).toThrow(/entry 1: expiry must be a real day/);
    expect(() => parseApiTokens(`t:${HASH}:2026-13-01`)).toThrow(/entry 1: expiry must be a real day/);
    expect(() => createApiToken('acme', { expires: '2027-02-31' })).toThrow(/real day.*2027-02-31/);
    expect(parseApiTokens(`t:${HASH}:2028-02-29`)[0]?.expiresAt?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });

  it('refuses at creation an expiry that has passed or is today, since the token would never work', () => {
    const now = new Date('2026-12-03T10:00:00Z');
    expect(() => createApiToken('acme', { expires: '2026-12-01', now })).toThrow(/2026-12-01 has passed/);
    expect(() => createApiToken('acme', { expires: '2026-12-03', now })).toThrow(/has passed/);
    const made = createApiToken('acme', { expires: '2026-12-04', now });
    const tokens = parseApiTokens(made.entry);
    expect(authenticate(`Bearer ${made.token}`, tokens, now)).toMatchObject({ ok: true });
    expect(authenticate(`Bearer ${made.token}`, tokens, new Date('2026-12-04T00:00:00Z'))).toEqual({
      ok: false,
      reason: 'expired',
    });
  });

  it('gives a token the query scope alone unless it names more; an operator name adds the operator scope', () => {
    const scopesOf = (entry: string, token: string): Scope[] => {
      const outcome = authenticate(`Bearer ${token}`, parseApiTokens(entry));
      return outcome.ok ? [...outcome.caller.scopes].sort() : [];
    };
    const app = createApiToken('acme');
    expect(app.entry).not.toMatch(/scopes=/);
    expect(scopesOf(app.entry, app.token)).toEqual(['query']);
    const ingester = createApiToken('acme', { scopes: ['ingest'] });
    expect(ingester.entry).toMatch(/:scopes=ingest$/);
    expect(scopesOf(ingester.entry, ingester.token)).toEqual(['ingest']);
    const both = createApiToken('acme', { scopes: ['query', 'ingest'] });
    expect(scopesOf(both.entry, both.token)).toEqual(['ingest', 'query']);
    const operator = createApiToken('acme', { operator: 'alice' });
    expect(operator.entry).not.toMatch(/scopes=/);
    expect(scopesOf(operator.entry, operator.token)).toEqual(['operator', 'query']);
    const everything = createApiToken('acme', { operator: 'alice', scopes: ['query', 'ingest'] });
    expect(scopesOf(everything.entry, everything.token)).toEqual(['ingest', 'operator', 'query']);
  });

  it('refuses unknown or repeated scopes, and the operator scope without the name it acts as', () => {
    expect(() => parseApiTokens(`t:${HASH}:scopes=query+admin`)).toThrow(/entry 1: scopes must be .*not 'admin'/);
    expect(() => parseApiTokens(`t:${HASH}:scopes=`)).toThrow(/entry 1: scopes must be/);
    expect(() => parseApiTokens(`t:${HASH}:scopes=query:scopes=ingest`)).toThrow(/entry 1: scopes given twice/);
    expect(() => parseApiTokens(`t:${HASH}:scopes=operator`)).toThrow(/entry 1: the operator scope needs operator=/);
    expect(() => createApiToken('acme', { scopes: ['operator'] })).toThrow(/operator scope needs/);
  });

  it('names the scope a caller lacks', () => {
    const made = createApiToken('acme', { scopes: ['ingest'] });
    const outcome = authenticate(`Bearer ${made.token}`, parseApiTokens(made.entry));
    if (!outcome.ok) throw new Error('token refused');
    expect(missingScope(outcome.caller, 'ingest')).toBeUndefined();
    expect(missingScope(outcome.caller, 'query')).toBe('query');
    expect(missingScope(outcome.caller, 'operator')).toBe('operator');
  });
});
