import { describe, expect, it } from 'vitest';
import { ExtractiveGenerator, NO_ANSWER, splitSentences } from '../../lib/generation/extractive.js';
import { answerQuality } from '../../lib/generation/quality.js';
import { Analyzer } from '../../lib/retrieval/analyzer.js';

const chunk = (n: number, text: string) => ({
  n,
  chunkId: `d${n}#0`,
  docId: `d${n}`,
  title: `Doc ${n}`,
  text,
  score: 10 - n,
});

describe('extractive generator', () => {
  const generator = new ExtractiveGenerator();

  it('answers with the best sentences of the top chunks, each cited with its chunk number', async () => {
    const result = await generator.generate({
      query: 'How do I reset my password?',
      chunks: [
        chunk(
          1,
          '# Password\n\nOpen the sign-in page. Click **Forgot password** to get a reset link by email. The link expires after 30 minutes.',
        ),
        chunk(2, 'Billing runs monthly. Invoices are emailed to owners.'),
      ],
    });
    expect(result.answer).toContain('Forgot password to get a reset link by email. [1]');
    expect(result.answer).not.toContain('Billing');
    expect(result.citations).toEqual([1]);
    expect(result.model).toBe('extractive');
    expect(result.uncited).toBeUndefined();
  });

  it('cites every chunk it quotes', async () => {
    const result = await generator.generate({
      query: 'webhook retries and signing secret',
      chunks: [chunk(1, 'Webhook deliveries are retried 5 times.'), chunk(2, 'Each webhook has a signing secret.')],
    });
    expect(result.citations).toEqual([1, 2]);
    expect(result.answer).toMatch(/retried 5 times\. \[1\].*signing secret\. \[2\]/);
  });

  it('says it found nothing instead of quoting unrelated text', async () => {
    const result = await generator.generate({
      query: 'quantum entanglement',
      chunks: [chunk(1, 'Billing runs monthly.')],
    });
    expect(result.answer).toBe(NO_ANSWER);
    expect(result.uncited).toBe(true);
  });

  it('splits sentences and drops headings and list markers', () => {
    expect(splitSentences('# Title\n\n- First item is long enough.\n- Second item is long enough.')).toEqual([
      'First item is long enough.',
      'Second item is long enough.',
    ]);
  });
});

describe('answer quality', () => {
  const analyzer = new Analyzer();
  it('is high when cited sources cover the question, low when nothing matches', () => {
    const good = answerQuality(analyzer, {
      query: 'reset password link',
      sources: [{ n: 1, text: 'Click forgot password to get a reset link.' }],
      citations: [1],
    });
    const uncited = answerQuality(analyzer, {
      query: 'reset password link',
      sources: [{ n: 1, text: 'Click forgot password to get a reset link.' }],
      citations: [],
    });
    const unrelated = answerQuality(analyzer, {
      query: 'reset password link',
      sources: [{ n: 1, text: 'Billing runs monthly.' }],
      citations: [],
    });
    expect(good).toBe(1);
    expect(uncited).toBeCloseTo(0.8);
    expect(unrelated).toBe(0);
  });

  it('finds a cited source by its number when the numbers have a gap', () => {
    const sources = [
      { n: 1, text: 'Billing runs monthly.' },
      { n: 3, text: 'Click forgot password to get a reset link.' },
    ];
    expect(answerQuality(analyzer, { query: 'reset password link', sources, citations: [3] })).toBe(1);
    // A number with no source behind it counts as no citation.
    expect(answerQuality(analyzer, { query: 'reset password link', sources, citations: [2] })).toBeCloseTo(0.8);
  });
});
