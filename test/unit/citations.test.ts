import { describe, expect, it } from 'vitest';
import { extractCitations } from '../../lib/generation/citations.js';

describe('extractCitations', () => {
  it('reads single, grouped and adjacent markers in order of first appearance', () => {
    const result = extractCitations('Reset it [2]. Hold five seconds [1, 3]. Then wait [3][4].', [1, 2, 3, 4]);
    expect(result.citations).toEqual([2, 1, 3, 4]);
    expect(result.invalid).toEqual([]);
    expect(result.uncited).toBe(false);
    expect(result.answer).toBe('Reset it [2]. Hold five seconds [1, 3]. Then wait [3][4].');
  });

  it('accepts semicolons, spaces and small ranges', () => {
    expect(extractCitations('a [ 1 ; 2 ] b [3-5]', [1, 2, 3, 4, 5]).citations).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps only numbers of documents that were in the context and strips the others from the text', () => {
    const result = extractCitations('Yes [1, 7]. Also this [9]. And [2][8].', [1, 2]);
    expect(result.citations).toEqual([1, 2]);
    expect(result.invalid).toEqual([7, 9, 8]);
    expect(result.answer).toBe('Yes [1]. Also this. And [2].');
  });

  it('flags an answer with no valid citation as uncited', () => {
    expect(extractCitations("I don't know.", [1, 2]).uncited).toBe(true);
    const onlyInvalid = extractCitations('It is blue [5].', [1, 2]);
    expect(onlyInvalid).toEqual({ answer: 'It is blue.', citations: [], invalid: [5], uncited: true });
  });

  it('ignores bracketed text that is not a list of numbers', () => {
    const result = extractCitations('See [the manual] and [1a] and [] [1]', [1]);
    expect(result.citations).toEqual([1]);
    expect(result.answer).toBe('See [the manual] and [1a] and [] [1]');
  });
});
