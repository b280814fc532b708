import { describe, expect, it } from 'vitest';
import { authenticate, createApiToken, parseApiTokens } from '../../lib/api-tokens.js';

const HASH = 'a'.repeat(64);

describe('API tokens', () => {
  it("binds an operator's token to its name and an app's token to none", () => {
    const operator = createApiToken('acme', '2999-01-01', 'alice');
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
    expect(() => parseApiTokens(`t:${HASH}:soon`)).toThrow(/entry 1: expiry must be YYYY-MM-DD/);
    expect(() => createApiToken('acme', undefined, 'not valid')).toThrow(/operator/);
  });
});
