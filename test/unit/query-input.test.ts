import { describe, expect, it } from 'vitest';
import { queryWorkflowId } from '../../client/ragline-client.js';
import { qualityTierOf } from '../../contracts/query.js';
import { queryInputProblem } from '../../contracts/query.js';

describe('query validation', () => {
  const limits = { maxQueryChars: 4000 };
  it.each([
    ['', /empty/],
    ['   \n\t ', /empty/],
    ['x'.repeat(4001), /4001 characters long; the maximum is 4000/],
    ['reset\u0000password', /control characters/],
    ['bell \u0007', /control characters/],
    ['broken \uD800 surrogate', /not valid UTF-8/],
    ['replacement \uFFFD char', /not valid UTF-8/],
  ])('rejects %j', (query, reason) => {
    expect(queryInputProblem({ query }, limits)).toMatch(reason);
  });

  it('accepts ordinary questions, newlines and non-Latin scripts', () => {
    expect(queryInputProblem({ query: 'How do I reset my password?' }, limits)).toBeUndefined();
    expect(queryInputProblem({ query: 'line one\nline two' }, limits)).toBeUndefined();
    expect(queryInputProblem({ query: 'パスワードをリセットするには？ 🙂' }, limits)).toBeUndefined();
    expect(queryInputProblem({ query: 'x'.repeat(4000) }, limits)).toBeUndefined();
  });

  it('checks tenant and options', () => {
    expect(queryInputProblem({ query: 'q', tenant: '../etc' }, limits)).toMatch(/tenant/);
    expect(queryInputProblem({ query: 'q', options: { topK: 0 } }, limits)).toMatch(/topK/);
    expect(queryInputProblem({ query: 'q', options: { topK: 2.5 } }, limits)).toMatch(/topK/);
    expect(queryInputProblem({ query: 'q', options: { deadlineMs: 10 } }, limits)).toMatch(/deadlineMs/);
    expect(queryInputProblem({ query: 42 } as never, limits)).toMatch(/string/);
  });
});

describe('quality tiers', () => {
  it('uses the cut-offs 0.8 / 0.6 / 0.4', () => {
    expect([0.95, 0.8, 0.79, 0.6, 0.59, 0.4, 0.39, 0].map(qualityTierOf)).toEqual([
      'excellent',
      'excellent',
      'good',
      'good',
      'fair',
      'fair',
      'poor',
      'poor',
    ]);
  });
});

describe('query workflow ids', () => {
  it('are readable: tenant, a hash of the normalised question, the time', () => {
    const at = new Date('2026-11-25T02:30:00.123Z');
    const id = queryWorkflowId('acme', 'How do I reset my password?', at);
    expect(id).toMatch(/^query:acme:[0-9a-f]{8}-20261125T023000123Z-[0-9a-f]{4}$/);
    const same = queryWorkflowId('acme', 'how do i reset my password', at);
    expect(same.slice(0, 19)).toBe(id.slice(0, 19));
    expect(queryWorkflowId('acme', 'Something else', at).slice(0, 19)).not.toBe(id.slice(0, 19));
  });
});
