import { describe, expect, it } from 'vitest';
import { groundedness } from '../../lib/generation/groundedness.js';
import { Analyzer } from '../../lib/retrieval/analyzer.js';

const analyzer = new Analyzer();
const sources = [
  { n: 1, text: 'Click Forgot password on the sign-in page to get a reset link by email.' },
  { n: 2, text: 'Invoices are emailed to account owners every month.' },
];

describe('groundedness', () => {
  it('counts a sentence supported by the chunk it cites', () => {
    const g = groundedness(analyzer, {
      answer: 'Click Forgot password to get a reset link by email. [1] Invoices are emailed every month. [2]',
      sources,
    });
    expect(g).toEqual({ score: 1, unsupported: [], mostlyUnsupported: false });
  });

  it('lists an invented sentence and flags an answer that is mostly unsupported', () => {
    const g = groundedness(analyzer, {
      answer:
        'Click Forgot password to get a reset link by email. [1] The moon is made of green cheese. [1] Elephants migrate across the tundra in winter.',
      sources,
    });
    expect(g.unsupported).toEqual([
      'The moon is made of green cheese. [1]',
      'Elephants migrate across the tundra in winter.',
    ]);
    expect(g.score).toBeCloseTo(1 / 3, 3);
    expect(g.mostlyUnsupported).toBe(true);
  });

  it('catches a true sentence citing the wrong chunk or a chunk that was not retrieved', () => {
    const g = groundedness(analyzer, {
      answer: 'Click Forgot password to get a reset link by email. [2] Invoices are emailed every month. [7]',
      sources,
    });
    expect(g.score).toBe(0);
    expect(g.unsupported).toHaveLength(2);
  });
});
