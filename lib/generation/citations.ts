/**
 * Citation markers in a model's answer: `[1]`, `[1, 3]`, `[1; 3]`, `[1][3]` and small ranges like `[2-4]`.
 * Models sometimes cite documents they were not given (or that the budget dropped); those numbers are removed from
 * the text so a reader never follows a reference to nothing, and an answer left with no valid citation is flagged.
 */

export interface CitationResult {
  /** The answer with markers rewritten to hold only valid numbers. */
  answer: string;
  /** Valid numbers, in order of first appearance. */
  citations: number[];
  /** Numbers cited that are not in the context, in order of first appearance. */
  invalid: number[];
  uncited: boolean;
}

const MARKER = /\[\s*(\d+(?:\s*[-–]\s*\d+)?(?:\s*[,;]\s*\d+(?:\s*[-–]\s*\d+)?)*)\s*\]/g;
// A range wider than this is not a citation a model means; treat its ends as two numbers.
const MAX_RANGE = 20;

function expand(list: string): number[] {
  const numbers: number[] = [];
  for (const part of list.split(/[,;]/)) {
    const [from, to] = part.split(/[-–]/).map((value) => Number.parseInt(value.trim(), 10));
    if (from === undefined || Number.isNaN(from)) continue;
    if (to === undefined || Number.isNaN(to)) {
      numbers.push(from);
    } else if (to >= from && to - from < MAX_RANGE) {
      for (let n = from; n <= to; n += 1) numbers.push(n);
    } else {
      numbers.push(from, to);
    }
  }
  return numbers;
}

export function extractCitations(answer: string, validNumbers: Iterable<number>): CitationResult {
  const valid = new Set(validNumbers);
  const citations: number[] = [];
  const invalid: number[] = [];
  const note = (list: number[], n: number) => {
    if (!list.includes(n)) list.push(n);
  };

  const rewritten = answer.replace(MARKER, (marker, list: string) => {
    const numbers = expand(list);
    const kept = numbers.filter((n) => valid.has(n));
    for (const n of numbers) note(valid.has(n) ? citations : invalid, n);
    if (kept.length === numbers.length) return marker;
    return kept.length === 0 ? '' : `[${[...new Set(kept)].join(', ')}]`;
  });
  // Removing a marker can leave "word ." or doubled spaces behind.
  const cleaned =
    invalid.length === 0
      ? answer
      : rewritten
          .replace(/[ \t]+([.,;:!?])/g, '$1')
          .replace(/[ \t]{2,}/g, ' ')
          .trim();

  return { answer: cleaned, citations, invalid, uncited: citations.length === 0 };
}
